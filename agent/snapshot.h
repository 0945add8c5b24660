// An immutable picture of the aggregation, published by the event reader's thread and read
// by HTTP handlers. Plain data (rows, labels, health): nothing here loads or resolves anything.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/aggregate/connection_row.h"
#include "agent/event/kernel_stats.h"
#include "agent/flow_table.h"
#include "agent/k8s/pod_resolver_stats.h"
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
  ConnectionRow connection;
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
  // The most recently active connections, least recently active first: all of them, or as
  // many as were asked for (periodic snapshots list none, see SnapshotStore).
  std::vector<ConnectionView> connections;
  size_t connections_total = 0;  // tracked when the snapshot was taken
  AgentHealth health;
  std::string node;  // the node this agent watches ($NODE_NAME, which the chart sets); "" if unset

  // Tracked connections; a snapshot built by hand may list connections without the total.
  size_t tracked_connections() const { return std::max(connections_total, connections.size()); }
};

// Where the reader thread publishes snapshots and HTTP handlers find them. A scrape only ever
// copies a shared_ptr, so it never blocks the reader and the reader never waits on a scrape.
//
// The connection list is most of a snapshot's memory (~300 bytes a connection, 30 MB at 100k),
// so periodic snapshots carry none. A handler that needs it asks, and the reader thread answers
// at its next drain with a snapshot listing the connections asked for; that snapshot lives only
// as long as the answers holding it.
class SnapshotStore {
 public:
  // Reader thread: the periodic snapshot.
  void publish(std::shared_ptr<const Snapshot> snapshot);
  std::shared_ptr<const Snapshot> latest() const;

  // HTTP threads: a snapshot taken after this call that lists the `limit` most recently active
  // connections; nullptr when not answered within timeout, or once closed.
  std::shared_ptr<const Snapshot> request_connections(size_t limit, std::chrono::milliseconds timeout);
  // Reader thread: the largest limit asked for and not answered yet.
  std::optional<size_t> connections_wanted() const;
  // Reader thread: answers every waiting request whose limit is at most `limit`.
  void answer_connections(const std::shared_ptr<const Snapshot>& snapshot, size_t limit);
  // The reader is stopping: waiting and later requests get nullptr at once.
  void close();

 private:
  struct Request {
    size_t limit = 0;
    bool answered = false;
    std::shared_ptr<const Snapshot> answer;
  };

  mutable std::mutex mutex_;  // guards pointer copies and the request list, nothing longer
  std::condition_variable answered_;
  std::shared_ptr<const Snapshot> latest_;
  std::vector<std::shared_ptr<Request>> waiting_;
  bool closed_ = false;
};

}  // namespace netwatch
