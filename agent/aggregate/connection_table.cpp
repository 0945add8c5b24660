#include "aggregate/connection_table.h"

#include <algorithm>
#include <cstddef>
#include <new>
#include <type_traits>

namespace netwatch::aggregate {

ConnectionTable::ConnectionTable(ConnectionTableLimits limits) : limits_(limits) {
  // Address space only (pages are touched as connections arrive), so slots move only beyond 4M.
  slots_.reserve(std::min<size_t>(limits_.max_connections, size_t{1} << 22));
  // Full after the first recently_closed closes, and stays full: sized once.
  closed_ring_.reserve(limits_.recently_closed);
  closed_.reserve(limits_.recently_closed);
}

Connection& ConnectionTable::new_slot(uint64_t cookie) {
  if (index_.size() >= limits_.max_connections) evict_least_recent();
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    static_assert(std::is_trivially_destructible_v<Connection>);
    new (&slots_[slot]) Connection{};  // in place: no temporary to copy
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  index_.insert(cookie, slot);
  return slots_[slot];
}

Connection& ConnectionTable::insert(uint64_t cookie, Flow& flow) {
  Connection& c = new_slot(cookie);
  c.cookie = cookie;
  c.flow = &flow;
  ++flow.stats.active;
  return c;
}

void ConnectionTable::restore(const ConnectionRow& saved, Flow& flow) {
  if (saved.cookie == 0 || find(saved.cookie)) return;
  Connection& c = new_slot(saved.cookie);
  c.cookie = saved.cookie;
  c.direction = saved.direction;
  c.state = saved.state;
  c.pid = saved.pid;
  c.comm = saved.comm;
  c.local = saved.local;
  c.remote = saved.remote;
  c.local_port = saved.local_port;
  c.remote_port = saved.remote_port;
  c.cgroup_id = saved.cgroup_id;
  c.workload = saved.workload;
  c.first_ns = saved.first_ns;
  c.last_ns = saved.last_ns;
  c.connect_latency_ns = saved.connect_latency_ns;
  c.srtt_us = saved.srtt_us;
  c.rttvar_us = saved.rttvar_us;
  c.snd_cwnd = saved.snd_cwnd;
  // base = seen - count (a 32-bit base modulo 2^32, with seen = base + count), so that the counts
  // come back exactly and seen still matches the kernel's counter.
  const ConnectionRow::Kernel& k = saved.kernel;
  c.base = {static_cast<uint32_t>(k.retransmits - saved.retransmits), static_cast<uint32_t>(k.segs_out - saved.segs_out),
            k.bytes_sent - saved.bytes_sent, k.bytes_received - saved.bytes_received};
  c.seen = {c.base.retransmits + saved.retransmits, c.base.segs_out + saved.segs_out, k.bytes_sent,
            k.bytes_received};
  c.flow = &flow;
  stamp(c);
  ++flow.stats.active;
}

void ConnectionTable::release(Connection& c, bool closed) {
  // A flow expires only without live connections: its last update matters from here on, so the
  // connection's last event is folded in now rather than written into the flow on every event.
  FlowStats& f = c.flow->stats;
  --f.active;
  f.last_update_ns = std::max(f.last_update_ns, c.last_ns);
  if (closed) remember_closed(c.cookie);
  index_.erase(c.cookie);
  c.flow = nullptr;
  c.cookie = 0;
  free_slots_.push_back(static_cast<uint32_t>(&c - slots_.data()));
}

void ConnectionTable::remember_closed(uint64_t cookie) {
  // Late events of a closed connection (reordered per-CPU buffers) must not revive it.
  if (limits_.recently_closed == 0) return;
  if (closed_ring_.size() < limits_.recently_closed) {
    closed_next_ = closed_ring_.size();
    closed_ring_.push_back(cookie);
  } else {
    closed_next_ = (closed_next_ + 1) % closed_ring_.size();
    closed_.erase(closed_ring_[closed_next_]);
    closed_ring_[closed_next_] = cookie;
  }
  closed_.insert(cookie, static_cast<uint32_t>(closed_next_));
}

void ConnectionTable::evict_least_recent() {
  while (true) {
    if (next_victim_ == victims_.size()) {
      // The least recently active 1/64 of the table, least recent first: one pass over the
      // slots pays for that many evictions.
      victims_.clear();
      next_victim_ = 0;
      for (uint32_t slot = 0; slot < slots_.size(); ++slot)
        if (slots_[slot].flow) victims_.emplace_back(slots_[slot].last_seq, slot);
      if (victims_.empty()) return;
      size_t batch = std::max<size_t>(1, victims_.size() / 64);
      std::nth_element(victims_.begin(), victims_.begin() + (batch - 1), victims_.end());
      victims_.resize(batch);
      std::sort(victims_.begin(), victims_.end());
    }
    auto [seq, slot] = victims_[next_victim_++];
    Connection& c = slots_[slot];
    if (c.flow && c.last_seq == seq) {  // still the least recently active: nothing newer was chosen
      release(c, false);                // its counts are already in its flow
      ++evicted_full_;
      return;
    }
  }
}

std::vector<uint32_t> ConnectionTable::recent_slots(size_t limit) const {
  if (limit == 0) return {};  // the periodic snapshot: no pass over the table
  std::vector<std::pair<uint64_t, uint32_t>> live;
  live.reserve(index_.size());
  for (uint32_t slot = 0; slot < slots_.size(); ++slot)
    if (slots_[slot].flow) live.emplace_back(slots_[slot].last_seq, slot);
  if (limit < live.size()) {
    std::nth_element(live.begin(), live.end() - static_cast<ptrdiff_t>(limit), live.end());
    live.erase(live.begin(), live.end() - static_cast<ptrdiff_t>(limit));
  }
  std::sort(live.begin(), live.end());
  std::vector<uint32_t> slots;
  slots.reserve(live.size());
  for (const auto& [seq, slot] : live) slots.push_back(slot);
  return slots;
}

size_t ConnectionTable::expire_idle(uint64_t now_ns, uint64_t idle_ns) {
  size_t removed = 0;
  for (Connection& c : slots_) {
    if (c.flow && now_ns - c.last_ns >= idle_ns) {
      release(c, false);
      ++evicted_idle_;
      ++removed;
    }
  }
  return removed;
}

}  // namespace netwatch::aggregate
