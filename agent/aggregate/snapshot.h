// An immutable picture of the aggregation, published by the event reader's thread and read
// by HTTP handlers. Plain data (rows, labels, health): nothing here loads or resolves anything.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aggregate/connection_row.h"
#include "aggregate/flow_table.h"
#include "event/kernel_stats.h"
#include "k8s/pod_resolver_stats.h"
#include "k8s/workload_labels.h"

namespace netwatch::aggregate {

std::string port_label(const FlowKey& key);  // the number, or "other" once folded

struct FlowView {
  FlowKey key;
  k8s::WorkloadLabels workload;
  FlowStats stats;

  std::string peer_label() const;  // the address, or "other" once folded
  std::string port_label() const { return aggregate::port_label(key); }
};

struct ServiceView {
  FlowKey key;  // peer always folded
  k8s::WorkloadLabels workload;
  ServiceStats stats;

  std::string port_label() const { return aggregate::port_label(key); }
};

struct ConnectionView {
  ConnectionRow connection;
  k8s::WorkloadLabels workload;
};

struct AgentHealth {
  std::array<uint64_t, event::kEventTypeCount> events{};  // received and decoded, by type
  event::KernelCounters kernel;                           // produced and lost in the kernel
  uint64_t drains = 0;
  uint64_t decode_errors = 0;
  uint64_t evicted_full = 0;
  uint64_t evicted_idle = 0;
  size_t max_connections = 0;
  size_t series_budget = 0;  // --max-series
  size_t flow_cap = 0;       // --max-flows; 0: none
  FoldLevel stage = FoldLevel::none;
  size_t churn_threshold = 0;  // new flow keys per minute; 0: the breaker is off
  bool churn_breaker_tripped = false;
  uint64_t churn_trips = 0;
  uint64_t new_flow_keys = 0;
  uint64_t folded_total = 0;
  uint64_t workload_overflows = 0;
  std::string variant, transport;
  std::vector<event::ProgramStats> programs;
  std::optional<k8s::PodResolverStats> pods;  // when pod labels are on
};

struct Snapshot {
  uint64_t taken_mono_ns = 0;
  uint64_t taken_unix_ns = 0;
  std::vector<FlowView> flows;
  std::vector<ServiceView> services;  // the latency histograms
  // The most recently active connections, least recently active first: all of them, or as
  // many as were asked for (periodic snapshots list none, see SnapshotStore).
  std::vector<ConnectionView> connections;
  size_t connections_total = 0;  // tracked when the snapshot was taken
  AgentHealth health;
  std::string node;  // the node this agent watches ($NODE_NAME, which the chart sets); "" if unset

  // Tracked connections; a snapshot built by hand may list connections without the total.
  size_t tracked_connections() const { return std::max(connections_total, connections.size()); }
};

}  // namespace netwatch::aggregate
