// Arbitrary bytes as the previous agent's checkpoint (read back from the pin directory): a
// restore either takes them or refuses them whole, and the outputs still render.
#include <cstddef>
#include <cstdint>

#include "persist/checkpoint.h"
#include "serve/metrics_render.h"
#include "serve/snapshot_json.h"

using namespace netwatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small caps, so that restoring past them evicts and folds.
  aggregate::Aggregator aggregator(
      aggregate::AggregatorConfig{.max_connections = 16, .max_flows = 10, .max_workloads = 4}, [](uint64_t cgroup) {
        return k8s::WorkloadLabels{"ns", "pod" + std::to_string(cgroup % 7), "c"};
      });
  std::optional<persist::Restored> restored = persist::restore_checkpoint(std::span(data, size), aggregator);
  if (!restored && (aggregator.connections().size() || aggregator.flows().size())) __builtin_trap();  // half-restored
  auto snapshot = aggregator.snapshot(1'000'000'000, 0);
  serve::render_metrics_text(*snapshot);
  serve::snapshot_to_json(*snapshot, 100);
  return 0;
}
