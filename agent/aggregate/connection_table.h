// Slot storage for live connections, keyed by socket cookie: lookup and insert, slot reuse,
// recency, eviction when full or idle, and the prefetching of a batch. What an event does to a
// connection is EventRules' (agent/aggregate/event_rules.h); this table holds the results.
//
// Storage is built for the event path (EventReader::deliver at 100k+ live connections): the
// connections live in one dense vector of slots, found through a flat cookie index, and recency
// is a sequence number written on each event instead of a list reordered on each event. Ordering
// by recency is paid where it is needed: when the table is full (a batch of least recent victims
// is chosen per 1/64 of the table) and when a snapshot lists connections.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "aggregate/connection_row.h"
#include "aggregate/cookie_index.h"
#include "aggregate/flow_table.h"
#include "event/event.h"
#include "event/event_record.h"

namespace netwatch::aggregate {

// The hot slot, private to aggregation: what leaves it is a ConnectionRow (row_of).
// Cache-line aligned (192 bytes): the fields every event touches are then exactly two lines.
struct alignas(64) Connection {
  // What every event reads or writes, together at the front: the event path prefetches these
  // bytes (ConnectionTable::visit) and nothing after them.
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
  event::Direction direction = event::Direction::unknown;
  event::IpAddress local, remote;
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

struct ConnectionTableLimits {
  size_t max_connections = 65536;
  size_t recently_closed = 4096;  // closed cookies remembered to ignore late events
};

class ConnectionTable {
 public:
  explicit ConnectionTable(ConnectionTableLimits limits = {});

  // Calls, for each record in order, live(connection, record) when its cookie is live; when that
  // returns false, or the cookie is not live, other(record, connection or nullptr). A record that
  // live() handled is stamped most recent; other() stamps what it keeps (stamp()) and may insert
  // and release. Before that it starts to load what a batch of records will read (index entries,
  // then connections), so their cache misses overlap instead of following one another. Returns
  // how many records live() handled.
  template <class Live, class Other>
  size_t visit(std::span<const event::EventRecord> records, Live&& live, Other&& other);

  Connection* find(uint64_t cookie) {
    uint32_t slot = index_.find(cookie);
    return slot == CookieIndex::kNone ? nullptr : &slots_[slot];
  }
  // A fresh connection for cookie (not in the table, not 0), counted as active in flow; evicts
  // the least recently active first when the table is full.
  Connection& insert(uint64_t cookie, Flow& flow);
  // Marks c the most recently active.
  void stamp(Connection& c) { c.last_seq = ++events_; }
  // Frees c's slot; its flow keeps c's last event time. A closed connection's cookie is
  // remembered (recently_closed) so that its late events do not revive it.
  void release(Connection& c, bool closed);
  bool recently_closed(uint64_t cookie) const { return closed_.find(cookie) != CookieIndex::kNone; }
  // Drops connections without an event for idle_ns (their close was lost, or they are idle
  // long-lived ones that come back with their counters re-based). Returns how many.
  size_t expire_idle(uint64_t now_ns, uint64_t idle_ns);

  // A connection the previous agent tracked (persist/checkpoint.cpp), counted in `flow`; call
  // in recency order, least recent first. Evicts as insert() does when the table is full.
  void restore(const ConnectionRow& saved, Flow& flow);
  static ConnectionRow row_of(const Connection& c);

  size_t size() const { return index_.size(); }
  uint64_t evicted_full() const { return evicted_full_; }
  uint64_t evicted_idle() const { return evicted_idle_; }
  // The previous agent's eviction counts (agent/persist/checkpoint.cpp): added to this one's.
  void add_evicted(uint64_t full, uint64_t idle) {
    evicted_full_ += full;
    evicted_idle_ += idle;
  }

  // Least recently active first.
  template <class F>
  void for_each(F&& f) const {
    for_each_recent(SIZE_MAX, f);
  }
  // f(row, flow) for each connection, least recently active first.
  template <class F>
  void for_each_row(F&& f) const {
    for_each([&](const Connection& c) { f(row_of(c), *c.flow); });
  }
  // The `limit` most recently active connections, least recently active first.
  template <class F>
  void for_each_recent(size_t limit, F&& f) const {
    for (uint32_t slot : recent_slots(limit)) f(slots_[slot]);
  }

 private:
  Connection& new_slot(uint64_t cookie);  // cookie is not in the table
  void evict_least_recent();
  void remember_closed(uint64_t cookie);
  std::vector<uint32_t> recent_slots(size_t limit) const;

  ConnectionTableLimits limits_;
  std::vector<Connection> slots_;
  std::vector<uint32_t> free_slots_;
  CookieIndex index_;
  uint64_t events_ = 0;  // stamped so far: the source of last_seq
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
};

template <class Live, class Other>
size_t ConnectionTable::visit(std::span<const event::EventRecord> records, Live&& live, Other&& other) {
  constexpr size_t kAhead = 32;  // records whose misses are in flight together
  std::array<uint32_t, kAhead> found;
  size_t handled_live = 0;
  while (!records.empty()) {
    auto batch = records.first(std::min(kAhead, records.size()));
    records = records.subspan(batch.size());
    for (const event::EventRecord& r : batch) index_.prefetch(r.cookie());
    // Locals the compiler can keep in registers (stores into connections might alias members);
    // written back, and read again, around other(), which may move the slots.
    Connection* slots = slots_.data();
    uint64_t seq = events_;
    for (size_t i = 0; i < batch.size(); ++i) {
      found[i] = index_.find(batch[i].cookie());
      if (found[i] == CookieIndex::kNone) continue;
      // The front of the connection, up to its identity: two cache lines.
      static_assert(offsetof(Connection, direction) <= 128 && alignof(Connection) == 64);
      auto* c = reinterpret_cast<const char*>(&slots[found[i]]);
      __builtin_prefetch(c);
      __builtin_prefetch(c + 64);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      // Earlier records of the batch may have closed a connection and reused its slot, or opened
      // one not found above: a slot is taken only if it still holds the cookie, else looked up.
      const event::EventRecord r = batch[i];  // a copy of the view: the stores below cannot change it
      uint32_t slot = found[i];
      Connection* c = slot != CookieIndex::kNone && slots[slot].cookie == r.cookie()
                          ? &slots[slot]
                          : find(r.cookie());
      if (c && live(*c, r)) [[likely]] {
        c->last_seq = ++seq;
        ++handled_live;
      } else {
        events_ = seq;
        other(r, c);
        seq = events_;
        slots = slots_.data();
      }
    }
    events_ = seq;
  }
  return handled_live;
}

inline ConnectionRow ConnectionTable::row_of(const Connection& c) {
  ConnectionRow r;
  r.cookie = c.cookie;
  r.direction = c.direction;
  r.state = c.state;
  r.pid = c.pid;
  r.comm = c.comm;
  r.local = c.local;
  r.remote = c.remote;
  r.local_port = c.local_port;
  r.remote_port = c.remote_port;
  r.cgroup_id = c.cgroup_id;
  r.workload = c.workload;
  r.first_ns = c.first_ns;
  r.last_ns = c.last_ns;
  r.connect_latency_ns = c.connect_latency_ns;
  r.srtt_us = c.srtt_us;
  r.rttvar_us = c.rttvar_us;
  r.snd_cwnd = c.snd_cwnd;
  r.retransmits = c.retransmits();
  r.segs_out = c.segs_out();
  r.bytes_sent = c.bytes_sent();
  r.bytes_received = c.bytes_received();
  r.kernel = {static_cast<uint32_t>(c.seen.retransmits), static_cast<uint32_t>(c.seen.segs_out), c.seen.bytes_sent,
              c.seen.bytes_received};
  return r;
}

}  // namespace netwatch::aggregate
