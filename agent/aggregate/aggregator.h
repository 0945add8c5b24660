// The event reader's sink: applies the event rules (agent/aggregate/event_rules.h) to the
// connections and flows, expires what is idle and builds snapshots. Single-threaded: only the
// reader's thread touches it.
#pragma once

#include <functional>
#include <array>
#include <memory>
#include <vector>

#include "aggregate/connection_table.h"
#include "aggregate/event_rules.h"
#include "aggregate/flow_table.h"
#include "aggregate/snapshot.h"
#include "aggregate/workload_registry.h"
#include "event/event_sink.h"

namespace netwatch::aggregate {

struct AggregatorConfig {
  size_t max_connections = 65536;
  size_t max_series = 10000;  // the series budget: everything /metrics exports
  size_t max_flows = 0;       // also at most this many flows (the old budget); 0: no such cap
  size_t max_workloads = 4096;
  size_t churn_new_flows_per_minute = 300;  // the churn breaker (FlowTableLimits); 0: off
  uint64_t connection_idle_ns = 300'000'000'000ULL;  // 5 min without any event
  uint64_t flow_idle_ns = 600'000'000'000ULL;        // 10 min without connections or updates
};

// The aggregation as plain data: what a checkpoint saves (agent/persist/checkpoint.cpp) and a fresh
// aggregator takes back.
struct AggregatorState {
  std::array<uint64_t, event::kEventTypeCount> events{};  // records applied, by type
  uint64_t evicted_full = 0, evicted_idle = 0;
  WorkloadRegistry::State workloads;
  FlowTable::State flows;  // a key's workload is an id into workloads.labels
  struct SavedConnection {
    uint32_t flow = 0;  // index into flows.flows
    ConnectionRow row;  // its workload too is an id into workloads.labels
  };
  std::vector<SavedConnection> connections;  // least recently active first
};

// Pod labels of a socket's cgroup; empty for host processes.
using WorkloadResolver = std::function<k8s::WorkloadLabels(uint64_t cgroup_id)>;

class Aggregator final : public event::EventSink {
 public:
  explicit Aggregator(const AggregatorConfig& config, WorkloadResolver resolver = {});

  void on_event(const event::Event& event) override;  // as the record the kernel would have sent
  // Reads what changes per record straight from it, decodes a connection's identity once, and
  // prefetches the batch's connections.
  void on_records(std::span<const event::EventRecord> records) override;
  void expire(uint64_t now_mono_ns);
  // Everything but the kernel- and reader-side health, which the caller fills in. Lists the
  // `connection_limit` most recently active connections (all by default).
  std::shared_ptr<Snapshot> snapshot(uint64_t now_mono_ns, uint64_t now_unix_ns,
                                     size_t connection_limit = SIZE_MAX) const;

  AggregatorState save() const;
  // Into a fresh aggregator: workloads interned again, flows folded again where this budget is
  // smaller, connections evicted as when the table is full, counts added. A connection whose flow
  // index is out of range is skipped.
  void restore(const AggregatorState& saved);

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
};

}  // namespace netwatch::aggregate
