// What an agent hands to the next one at a clean stop, so that a restart or an upgrade resets
// no exported counter and keeps tracking live connections: the aggregation (connections,
// flows, workloads, counts) and the counters of the parts that restart with the process.
// Stored in the pin directory (PinDir::store_checkpoint) as CBOR with a format number: named
// sections and fields (format 2), so that agents of other versions skip what they do not know and
// take 0 for what is missing. Format 1 (positional rows, the agents before) is still read.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "aggregate/aggregator.h"
#include "aggregate/snapshot.h"

namespace netwatch::persist {

// Counters kept outside the aggregator, as the previous agent last exported them. The new
// agent adds them to its own (add_to); the kernel's and the programs' only when its probes
// were replaced: adopted probes kept counting.
struct CounterBase {
  event::KernelCounters kernel;
  std::vector<event::ProgramStats> programs;
  uint64_t drains = 0;
  uint64_t decode_errors = 0;
  k8s::PodResolverStats pods;  // the cumulative fields

  void add_to(aggregate::AgentHealth& health) const;
};

// `health` is what the agent exports now (bases included).
std::vector<uint8_t> save_checkpoint(const aggregate::Aggregator& aggregator, const aggregate::AgentHealth& health);

struct Restored {
  CounterBase base;
  size_t connections = 0;
  size_t flows = 0;
};
// Restores into a fresh aggregator (Aggregator::restore); nullopt (and nothing restored) when
// the bytes are not a checkpoint this version reads.
std::optional<Restored> restore_checkpoint(std::span<const uint8_t> bytes, aggregate::Aggregator& aggregator);

}  // namespace netwatch::persist
