// One event's path through the agent, in one place: the probes load and attach (kernel/), the
// reader drains their buffer (transport/) into the aggregator (aggregate/), and snapshots of the
// aggregation carry the agent's health to whoever publishes them (serve/, or `netwatch top`).
// With a pin directory, the checkpoint policy lives here too: continue from the previous
// agent's clean stop, and leave one for the next at ours.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "aggregate/aggregator.h"
#include "aggregate/snapshot.h"
#include "k8s/pod_resolver.h"
#include "kernel/probe_set.h"
#include "persist/checkpoint.h"
#include "transport/event_reader.h"

namespace netwatch::daemon {

struct PipelineOptions {
  kernel::ProbeOptions probes;
  transport::ReaderOptions reader;
  aggregate::AggregatorConfig aggregation;
  // Continue from the checkpoint the previous agent left in the pin directory, and log what
  // the pipeline continues from and where pod labels come from (the daemon; top stays quiet).
  bool checkpoint = false;
  std::string node;  // stamped on every snapshot ($NODE_NAME for the agent); "" if none
};

class Pipeline {
 public:
  // Loads and attaches the probes (FatalError with what to do when it cannot); `pods` (may be
  // null: no pod labels) labels each connection's workload.
  Pipeline(const PipelineOptions& options, std::unique_ptr<k8s::PodResolver> pods);
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Reads what the kernel sent: poll() waits up to the drain interval, drain() does not wait.
  void poll() { reader_->poll(); }
  void drain() { reader_->drain(); }
  void expire(uint64_t now_mono_ns) { aggregator_.expire(now_mono_ns); }
  // The aggregation with the agent's health, listing `connection_limit` connections.
  std::shared_ptr<aggregate::Snapshot> snapshot(size_t connection_limit) const;
  // At a clean stop with a pin directory: reads what is left in the buffer, then stores what the
  // next agent continues from. Nothing without a pin directory.
  void store_checkpoint();

  const kernel::ProbeSet& probes() const { return *probes_; }
  const aggregate::Aggregator& aggregator() const { return aggregator_; }
  const transport::EventReader& reader() const { return *reader_; }
  int drain_interval_ms() const { return drain_interval_ms_; }

 private:
  void continue_from_checkpoint();

  std::string node_;
  int drain_interval_ms_;
  std::unique_ptr<k8s::PodResolver> pods_;
  std::unique_ptr<kernel::ProbeSet> probes_;
  aggregate::Aggregator aggregator_;
  persist::CounterBase base_;                       // counters the previous agent exported, added to ours
  std::unique_ptr<transport::EventReader> reader_;  // last: it feeds the aggregator from the probes
  util::WallClock clock_;
};

}  // namespace netwatch::daemon
