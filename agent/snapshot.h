// An immutable picture of the aggregation, published by the event reader's thread and read
// by HTTP handlers. A scrape only ever copies a shared_ptr, so it never blocks the reader and
// the reader never waits on a scrape.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/connection_table.h"
#include "agent/flow_table.h"
#include "agent/pod_resolver.h"
#include "agent/probe_set.h"
#include "agent/workload_registry.h"

namespace netwatch {

struct FlowView {
  FlowKey key;
  WorkloadLabels workload;
  FlowStats stats;

  std::string peer_label() const;  // the address, or "other" once folded
  std::string port_label() const;  // the number, or "other" once folded
};

struct ConnectionView {
  Connection connection;  // flow pointer cleared
  WorkloadLabels workload;
};

struct AgentHealth {
  std::array<uint64_t, kEventTypeCount> events{};  // received and decoded, by type
  KernelCounters kernel;                            // produced and lost in the kernel
  uint64_t drains = 0;
  uint64_t decode_errors = 0;
  uint64_t evicted_full = 0;
  uint64_t evicted_idle = 0;
  size_t max_connections = 0;
  size_t flow_budget = 0;
  FoldLevel stage = FoldLevel::none;
  uint64_t folded_total = 0;
  uint64_t workload_overflows = 0;
  std::string variant, transport;
  std::vector<ProgramStats> programs;
  std::optional<PodResolverStats> pods;  // when pod labels are on
};

struct Snapshot {
  uint64_t taken_mono_ns = 0;
  uint64_t taken_unix_ns = 0;
  std::vector<FlowView> flows;
  std::vector<ConnectionView> connections;
  AgentHealth health;
};

class SnapshotStore {
 public:
  void publish(std::shared_ptr<const Snapshot> snapshot) {
    std::lock_guard lock(mutex_);
    latest_ = std::move(snapshot);
  }
  std::shared_ptr<const Snapshot> latest() const {
    std::lock_guard lock(mutex_);
    return latest_;
  }

 private:
  mutable std::mutex mutex_;  // guards one pointer copy, nothing else
  std::shared_ptr<const Snapshot> latest_;
};

}  // namespace netwatch
