// Arbitrary ring-buffer bytes into the decoder, and through the agent's own reader (a ring laid
// out as the kernel lays it out, read in place) into the aggregator and its outputs: nothing the
// kernel side could send may crash or corrupt the agent.
//
// Input: records of NW_EVENT_SIZE bytes, each written into the ring as one record; the bytes
// after the last whole record, if any, say how to write each record in turn (bit 0: discard it;
// bit 1: leave it busy across a drain, then commit it; bit 2: write only its first byte >> 3
// bytes, a record of the wrong size).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "aggregate/aggregator.h"
#include "transport/event_reader.h"
#include "transport/memory_ring.h"
#include "serve/metrics_render.h"
#include "serve/snapshot_json.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

using namespace netwatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small caps so eviction and folding run too; a small ring so records wrap past its end.
  static aggregate::Aggregator aggregator(
      aggregate::AggregatorConfig{.max_connections = 64, .max_flows = 16, .max_workloads = 4}, [](uint64_t cgroup) {
        return cgroup % 3 ? k8s::WorkloadLabels{"ns", "pod" + std::to_string(cgroup % 7), "c"} : k8s::WorkloadLabels{};
      });
  static transport::MemoryRing ring(4096);
  static transport::EventReader reader(ring.layout(), aggregator);
  static uint64_t runs = 0;
  event::decode_event(data, size);  // the whole input as one record

  size_t records = size / NW_EVENT_SIZE;
  const uint8_t* how = data + records * NW_EVENT_SIZE;
  size_t hows = size % NW_EVENT_SIZE;
  for (size_t i = 0; i < records; ++i) {
    uint8_t h = i < hows ? how[i] : 0;
    uint32_t bytes = h & 4 ? h >> 3 : NW_EVENT_SIZE;
    void* record;
    while (!(record = ring.reserve(bytes))) reader.drain();
    std::memcpy(record, data + i * NW_EVENT_SIZE, bytes);
    if (h & 2) reader.drain();  // stops at the busy record
    ring.commit(record, h & 1);
  }
  reader.drain();
  if (ring.consumer_pos() != ring.producer_pos()) __builtin_trap();  // everything read and released

  if (++runs % 64 == 0) {
    aggregator.expire(runs * 1'000'000'000ULL);
    auto snapshot = aggregator.snapshot(runs * 1'000'000'000ULL, 0);
    serve::render_metrics_text(*snapshot);
    serve::snapshot_to_json(*snapshot, 100).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
