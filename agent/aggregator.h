// The event reader's sink: applies the event rules (agent/aggregate/event_rules.h) to the
// connections and flows, expires what is idle and builds snapshots. Single-threaded: only the
// reader's thread touches it.
#pragma once

#include <functional>
#include <memory>

#include "agent/aggregate/event_rules.h"
#include "agent/connection_table.h"
#include "agent/event_reader.h"
#include "agent/flow_table.h"
#include "agent/snapshot.h"
#include "agent/workload_registry.h"

namespace netwatch {

struct AggregatorConfig {
  size_t max_connections = 65536;
  size_t max_flows = 2000;  // the series budget
  size_t max_workloads = 4096;
  uint64_t connection_idle_ns = 300'000'000'000ULL;  // 5 min without any event
  uint64_t flow_idle_ns = 600'000'000'000ULL;        // 10 min without connections or updates
};

// Pod labels of a socket's cgroup; empty for host processes.
using WorkloadResolver = std::function<WorkloadLabels(uint64_t cgroup_id)>;

class Aggregator final : public EventSink {
 public:
  explicit Aggregator(const AggregatorConfig& config, WorkloadResolver resolver = {});

  void on_event(const Event& event) override;  // as the record the kernel would have sent
  // Reads what changes per record straight from it, decodes a connection's identity once, and
  // prefetches the batch's connections.
  void on_records(std::span<const EventRecord> records) override;
  void expire(uint64_t now_mono_ns);
  // Everything but the kernel- and reader-side health, which the caller fills in. Lists the
  // `connection_limit` most recently active connections (all by default).
  std::shared_ptr<Snapshot> snapshot(uint64_t now_mono_ns, uint64_t now_unix_ns,
                                     size_t connection_limit = SIZE_MAX) const;

  const FlowTable& flows() const { return flows_; }
  const ConnectionTable& connections() const { return connections_; }
  const EventRules& rules() const { return rules_; }

 private:
  AggregatorConfig config_;
  WorkloadResolver resolver_;
  WorkloadRegistry workloads_;
  FlowTable flows_;
  ConnectionTable connections_;
  EventRules rules_;  // also counts the records by type

  friend struct CheckpointAccess;  // saves and restores all of the above
};

}  // namespace netwatch
