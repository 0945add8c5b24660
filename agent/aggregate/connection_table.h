// Live connections keyed by socket cookie. Every event with the kernel's cumulative
// counters moves the difference since the previous one into the connection's flow at once,
// so flow counters grow as things happen, never jump at close, and never go backwards.
//
// Storage is built for the event path (EventReader::deliver at 100k+ live connections): the
// connections live in one dense vector of slots, found through a flat cookie index, and recency
// is a sequence number written on each event instead of a list reordered on each event. Ordering
// by recency is paid where it is needed: when the table is full (a batch of least recent victims
// is chosen per 1/64 of the table) and when a snapshot lists connections.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "aggregate/cookie_index.h"
#include "event/event.h"
#include "event/event_record.h"
#include "aggregate/flow_table.h"

namespace netwatch {

// Cache-line aligned (192 bytes): the fields every event touches are then exactly two lines.
struct alignas(64) Connection {
  // What every event reads or writes, together at the front: the event path prefetches these
  // bytes (ConnectionTable::apply of a batch) and nothing after them.
  Flow* flow = nullptr;   // nullptr: a free slot of the table
  uint64_t cookie = 0;    // checked on every event: is a slot found earlier still this one? 0: free
  uint64_t last_ns = 0;   // monotonic: last event
  uint64_t last_seq = 0;  // the table's event count at its last event: orders recency
  // The kernel's cumulative counters as of the last event, the 32-bit ones extended past their
  // wraps, and as of when netwatch started counting (0 for a connection seen from its start).
  // A count is seen - base, so an event stores only what it read. The 32-bit bases stay 32-bit
  // (a seen starts at its base and only grows): that keeps a Connection in three cache lines.
  struct Seen {
    uint64_t retransmits = 0, segs_out = 0, bytes_sent = 0, bytes_received = 0;
  } seen;
  struct Base {
    uint32_t retransmits = 0, segs_out = 0;
    uint64_t bytes_sent = 0, bytes_received = 0;
  } base;
  uint32_t srtt_us = 0, rttvar_us = 0, snd_cwnd = 0;
  uint8_t state = 0;  // TCP state (TCP_ESTABLISHED = 1, ...) at the last event

  // Who it is: decoded from its first record.
  Direction direction = Direction::unknown;
  IpAddress local, remote;
  uint16_t local_port = 0, remote_port = 0;
  uint32_t pid = 0;
  std::array<char, 16> comm{};
  uint64_t cgroup_id = 0;
  uint32_t workload = 0;  // WorkloadRegistry id
  uint64_t first_ns = 0;  // monotonic: when the connection started, or was first seen
  uint64_t connect_latency_ns = 0;

  // Counted since netwatch saw the connection start (or since it was first seen).
  uint64_t retransmits() const { return seen.retransmits - base.retransmits; }
  uint64_t segs_out() const { return seen.segs_out - base.segs_out; }
  uint64_t bytes_sent() const { return seen.bytes_sent - base.bytes_sent; }
  uint64_t bytes_received() const { return seen.bytes_received - base.bytes_received; }
};
static_assert(sizeof(Connection) == 192, "a Connection is three cache lines: mind the per-connection memory");

// Who a connection belongs to, from its socket's cgroup id (pod labels), interned.
using WorkloadOf = std::function<uint32_t(uint64_t cgroup_id)>;

struct ConnectionTableLimits {
  size_t max_connections = 65536;
  size_t recently_closed = 4096;  // closed cookies remembered to ignore late events
};

class ConnectionTable {
 public:
  ConnectionTable(FlowTable& flows, WorkloadOf workload_of, ConnectionTableLimits limits = {});

  void apply(const EventRecord& record) { apply(record, find(record.cookie())); }
  // The same for each record in order, having first started to load what they will read (index
  // entries, then connections), so a batch's cache misses overlap instead of following one
  // another.
  void apply(std::span<const EventRecord> records);
  // Drops connections without an event for idle_ns (their close was lost, or they are idle
  // long-lived ones that come back with their counters re-based). Returns how many.
  size_t expire_idle(uint64_t now_ns, uint64_t idle_ns);

  // A connection the previous agent tracked (persist/checkpoint.cpp), counted in `flow`; call
  // in recency order, least recent first. Evicts as add() does when the table is full.
  void restore(const Connection& saved, Flow& flow);

  size_t size() const { return index_.size(); }
  uint64_t evicted_full() const { return evicted_full_; }
  // Records applied, by type: the agent's count of events received and decoded.
  const std::array<uint64_t, kEventTypeCount>& records_by_type() const { return by_type_; }
  uint64_t evicted_idle() const { return evicted_idle_; }

  // Least recently active first.
  template <class F>
  void for_each(F&& f) const {
    for_each_recent(SIZE_MAX, f);
  }
  // The `limit` most recently active connections, least recently active first.
  template <class F>
  void for_each_recent(size_t limit, F&& f) const {
    for (uint32_t slot : recent_slots(limit)) f(slots_[slot]);
  }

 private:
  Connection* find(uint64_t cookie) {
    uint32_t slot = index_.find(cookie);
    return slot == CookieIndex::kNone ? nullptr : &slots_[slot];
  }
  Connection& new_slot(uint64_t cookie);  // cookie is not in the table
  // c: r's connection, nullptr if not live. Every record type; out of line.
  void apply(const EventRecord& r, Connection* c);
  // An RTT sample of a live connection, most of the records: inline in the batch loop.
  void sample(Connection& c, const EventRecord& r, uint64_t seq);
  void touch(Connection& c, const EventRecord& r, uint64_t seq);  // the bookkeeping of every record of c
  Connection& add(const EventRecord& r, bool from_start);  // r's cookie is not in the table
  void count(Connection& c, const nw_tcp_stats& now);
  void forget(Connection& c, bool closed);
  void evict_least_recent();
  void remember_closed(uint64_t cookie);
  std::vector<uint32_t> recent_slots(size_t limit) const;
  FlowKey flow_key(const Event& e) const;

  FlowTable& flows_;
  WorkloadOf workload_of_;
  ConnectionTableLimits limits_;
  std::vector<Connection> slots_;
  std::vector<uint32_t> free_slots_;
  CookieIndex index_;
  uint64_t events_ = 0;  // applied so far: the source of last_seq
  std::array<uint64_t, kEventTypeCount> by_type_{};
  // The next capacity evictions: (last_seq, slot) of the least recently active when chosen,
  // least recent first. A victim active since then has a newer last_seq and is passed over.
  std::vector<std::pair<uint64_t, uint32_t>> victims_;
  size_t next_victim_ = 0;
  // Cookies of recently closed connections, oldest overwritten first, and their index (the
  // value is the position in the ring).
  std::vector<uint64_t> closed_ring_;
  size_t closed_next_ = 0;
  CookieIndex closed_;
  uint64_t evicted_full_ = 0, evicted_idle_ = 0;

  friend struct CheckpointAccess;  // restores the eviction and by-type counters
};

}  // namespace netwatch
