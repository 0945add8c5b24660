// Arbitrary ring-buffer bytes into the decoder, and whatever decodes into the aggregator and
// its outputs: nothing the kernel side could send may crash or corrupt the agent.
#include <cstddef>
#include <cstdint>

#include "agent/aggregator.h"
#include "agent/event_record.h"
#include "agent/metrics_render.h"
#include "agent/snapshot_json.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

using namespace netwatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small caps so eviction and folding run too.
  static Aggregator aggregator(
      AggregatorConfig{.max_connections = 64, .max_flows = 16, .max_workloads = 4}, [](uint64_t cgroup) {
        return cgroup % 3 ? WorkloadLabels{"ns", "pod" + std::to_string(cgroup % 7), "c"} : WorkloadLabels{};
      });
  static uint64_t runs = 0;
  decode_event(data, size);  // the whole input as one record
  // Records the way the reader hands them over: the aggregator decodes identity itself.
  for (size_t off = 0; off + NW_EVENT_SIZE <= size; off += NW_EVENT_SIZE) {
    EventRecord record;
    if (EventRecord::load(data + off, NW_EVENT_SIZE, record)) aggregator.on_records({&record, 1});
  }
  if (++runs % 64 == 0) {
    aggregator.expire(runs * 1'000'000'000ULL);
    auto snapshot = aggregator.snapshot(runs * 1'000'000'000ULL, 0);
    render_metrics_text(*snapshot);
    snapshot_to_json(*snapshot, 100).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
