// Live connections keyed by socket cookie. Every event with the kernel's cumulative
// counters moves the difference since the previous one into the connection's flow at once,
// so flow counters grow as things happen, never jump at close, and never go backwards.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <unordered_set>
#include <deque>

#include "agent/event.h"
#include "agent/flow_table.h"

namespace netwatch {

struct Connection {
  uint64_t cookie = 0;
  Direction direction = Direction::unknown;
  IpAddress local, remote;
  uint16_t local_port = 0, remote_port = 0;
  uint32_t pid = 0;
  std::array<char, 16> comm{};
  uint64_t cgroup_id = 0;
  uint32_t workload = 0;  // WorkloadRegistry id
  uint8_t state = 0;        // TCP state (TCP_ESTABLISHED = 1, ...) at the last event
  uint64_t first_ns = 0;    // monotonic: when the connection started, or was first seen
  uint64_t last_ns = 0;     // monotonic: last event
  uint64_t connect_latency_ns = 0;
  uint32_t srtt_us = 0, rttvar_us = 0, snd_cwnd = 0;
  TcpStats seen;  // the kernel's cumulative counters as of the last event (the delta base)
  // Counted since netwatch saw the connection start (or since it was first seen).
  uint64_t retransmits = 0, segs_out = 0, bytes_sent = 0, bytes_received = 0;
  Flow* flow = nullptr;
};

// Who a connection belongs to, from its socket's cgroup id (pod labels), interned.
using WorkloadOf = std::function<uint32_t(uint64_t cgroup_id)>;

struct ConnectionTableLimits {
  size_t max_connections = 65536;
  size_t recently_closed = 4096;  // closed cookies remembered to ignore late events
};

class ConnectionTable {
 public:
  ConnectionTable(FlowTable& flows, WorkloadOf workload_of, ConnectionTableLimits limits = {});

  void apply(const Event& event);
  // Drops connections without an event for idle_ns (their close was lost, or they are idle
  // long-lived ones that come back with their counters re-based). Returns how many.
  size_t expire_idle(uint64_t now_ns, uint64_t idle_ns);

  size_t size() const { return index_.size(); }
  uint64_t evicted_full() const { return evicted_full_; }
  uint64_t evicted_idle() const { return evicted_idle_; }

  template <class F>
  void for_each(F&& f) const {
    for (const Connection& c : lru_) f(c);
  }

 private:
  using Lru = std::list<Connection>;  // least recently active first
  Connection* find(uint64_t cookie);
  Connection& track(const Event& e, bool from_start);
  void count(Connection& c, const TcpStats& now);
  void forget(Connection& c, bool closed);
  FlowKey flow_key(const Event& e) const;

  FlowTable& flows_;
  WorkloadOf workload_of_;
  ConnectionTableLimits limits_;
  Lru lru_;
  std::unordered_map<uint64_t, Lru::iterator> index_;
  std::unordered_set<uint64_t> closed_;
  std::deque<uint64_t> closed_order_;
  uint64_t evicted_full_ = 0, evicted_idle_ = 0;
};

}  // namespace netwatch
