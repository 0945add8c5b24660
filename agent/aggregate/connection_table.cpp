#include "aggregate/connection_table.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <new>
#include <type_traits>

namespace netwatch {
namespace {

// Moves a kernel counter's growth into seen and returns it. A 32-bit counter's difference is
// taken in 32 bits, so that its wrap is growth (seen keeps counting past it). A smaller value
// is an older event that arrived late (per-CPU perf buffers reorder).
uint64_t advance32(uint64_t& seen, uint32_t now) {
  int32_t d = static_cast<int32_t>(now - static_cast<uint32_t>(seen));
  if (d <= 0) return 0;
  seen += static_cast<uint64_t>(d);
  return static_cast<uint64_t>(d);
}

uint64_t advance64(uint64_t& seen, uint64_t now) {
  if (now <= seen) return 0;
  uint64_t d = now - seen;
  seen = now;
  return d;
}

struct EphemeralRange {
  uint16_t low = 32768, high = 60999;  // the kernel's default ip_local_port_range
  EphemeralRange() {
    std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
    unsigned lo, hi;
    if (f >> lo >> hi && lo <= hi && hi <= 65535) low = lo, high = hi;
  }
  bool contains(uint16_t port) const { return port >= low && port <= high; }
};

// The service port of a connection that predates netwatch: the end that is not an
// ephemeral port, else the lower one.
uint16_t guess_service_port(uint16_t local, uint16_t remote) {
  static const EphemeralRange ephemeral;
  bool l = ephemeral.contains(local), r = ephemeral.contains(remote);
  if (l != r) return l ? remote : local;
  return std::min(local, remote);
}

}  // namespace

ConnectionTable::ConnectionTable(FlowTable& flows, WorkloadOf workload_of, ConnectionTableLimits limits)
    : flows_(flows), workload_of_(std::move(workload_of)), limits_(limits) {
  // Address space only (pages are touched as connections arrive), so slots move only beyond 4M.
  slots_.reserve(std::min<size_t>(limits_.max_connections, size_t{1} << 22));
  // Full after the first recently_closed closes, and stays full: sized once.
  closed_ring_.reserve(limits_.recently_closed);
  closed_.reserve(limits_.recently_closed);
}

FlowKey ConnectionTable::flow_key(const Event& e) const {
  FlowKey k;
  k.direction = e.direction;
  k.peer = e.daddr;
  switch (e.direction) {
    case Direction::outbound:
      k.port = e.dport;
      break;
    case Direction::inbound:
      k.port = e.sport;
      break;
    case Direction::unknown:
      k.port = guess_service_port(e.sport, e.dport);
      break;
  }
  k.workload = workload_of_ ? workload_of_(e.cgroup_id) : 0;
  return k;
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

void ConnectionTable::restore(const Connection& saved, Flow& flow) {
  if (saved.cookie == 0 || find(saved.cookie)) return;
  Connection& c = new_slot(saved.cookie);
  c = saved;
  c.flow = &flow;
  c.last_seq = ++events_;
  ++flow.stats.active;
}

Connection& ConnectionTable::add(const EventRecord& r, bool from_start) {
  // Once per connection: its identity, decoded in full (the process name made printable).
  Event e;
  r.decode(e);
  Connection& c = new_slot(e.cookie);
  c.cookie = e.cookie;
  c.direction = e.direction;
  c.local = e.saddr;
  c.remote = e.daddr;
  c.local_port = e.sport;
  c.remote_port = e.dport;
  c.pid = e.pid;
  c.comm = e.comm;
  c.cgroup_id = e.cgroup_id;
  c.first_ns = e.ts_ns;
  // From the start, every count is this connection's; first seen mid-life, only growth is.
  if (!from_start) {
    c.base = {e.stats.total_retrans, e.stats.segs_out, e.stats.bytes_sent, e.stats.bytes_received};
    c.seen = {c.base.retransmits, c.base.segs_out, c.base.bytes_sent, c.base.bytes_received};
  }
  FlowKey key = flow_key(e);
  c.workload = key.workload;
  c.flow = &flows_.resolve(key, e.ts_ns);
  ++c.flow->stats.active;
  return c;
}

inline void ConnectionTable::count(Connection& c, const nw_tcp_stats& now) {
  Connection::Seen& seen = c.seen;
  FlowStats& f = c.flow->stats;
  f.retransmits += advance32(seen.retransmits, now.total_retrans);
  f.segments_sent += advance32(seen.segs_out, now.segs_out);
  f.bytes_sent += advance64(seen.bytes_sent, now.bytes_sent);
  f.bytes_received += advance64(seen.bytes_received, now.bytes_received);
}

inline void ConnectionTable::touch(Connection& c, const EventRecord& r, uint64_t seq) {
  c.state = r.state();
  c.last_ns = r.ts_ns();
  c.last_seq = seq;
}

inline void ConnectionTable::sample(Connection& c, const EventRecord& r, uint64_t seq) {
  const nw_tcp_stats& stats = r.stats();
  count(c, stats);
  // srtt, rttvar, cwnd: adjacent in both, so two moves instead of three.
  static_assert(offsetof(Connection, rttvar_us) == offsetof(Connection, srtt_us) + 4 &&
                offsetof(Connection, snd_cwnd) == offsetof(Connection, srtt_us) + 8 &&
                offsetof(nw_tcp_stats, rttvar_us) == offsetof(nw_tcp_stats, srtt_us) + 4 &&
                offsetof(nw_tcp_stats, snd_cwnd) == offsetof(nw_tcp_stats, srtt_us) + 8);
  std::memcpy(&c.srtt_us, &stats.srtt_us, 3 * sizeof(uint32_t));
  c.flow->stats.rtt.observe_ns(uint64_t(stats.srtt_us) * 1000);
  touch(c, r, seq);
}

void ConnectionTable::forget(Connection& c, bool closed) {
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
      forget(c, false);                 // its counts are already in its flow
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

void ConnectionTable::apply(std::span<const EventRecord> records) {
  constexpr size_t kAhead = 32;  // records whose misses are in flight together
  std::array<uint32_t, kAhead> found;
  while (!records.empty()) {
    auto batch = records.first(std::min(kAhead, records.size()));
    records = records.subspan(batch.size());
    for (const EventRecord& r : batch) index_.prefetch(r.cookie());
    // Locals the compiler can keep in registers (stores into connections might alias members);
    // written back, and read again, around the out-of-line path, which may move the slots.
    Connection* slots = slots_.data();
    uint64_t seq = events_;
    uint64_t rtt_samples = 0;
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
      const EventRecord r = batch[i];  // a copy of the view: the stores below cannot change it
      uint32_t slot = found[i];
      Connection* c = slot != CookieIndex::kNone && slots[slot].cookie == r.cookie()
                          ? &slots[slot]
                          : find(r.cookie());
      if (c && r.type() == EventType::rtt) [[likely]] {
        sample(*c, r, ++seq);
        ++rtt_samples;
      } else {
        events_ = seq;
        apply(r, c);
        seq = events_;
        slots = slots_.data();
      }
    }
    events_ = seq;
    by_type_[static_cast<int>(EventType::rtt)] += rtt_samples;
  }
}

[[gnu::noinline]] void ConnectionTable::apply(const EventRecord& r, Connection* c) {
  EventType type = r.type();
  ++by_type_[static_cast<int>(type)];
  if (type == EventType::retransmit && r.cookie() == 0) {
    // A SYN-ACK retransmitted for a request sock: no connection exists yet.
    Event e;
    r.decode(e);
    Flow& flow = flows_.resolve(flow_key(e), e.ts_ns);
    flow.stats.retransmits += e.segs;
    return;
  }
  if (type == EventType::connect_failed) {
    Flow* flow;
    if (c) {  // its SYN was retransmitted: the final counters hold any not yet reported
      count(*c, r.stats());
      flow = c->flow;
      forget(*c, true);
    } else {
      Event e;
      r.decode(e);
      flow = &flows_.resolve(flow_key(e), e.ts_ns);
      // No entry: nothing of it was counted yet (its SYNs were not retransmitted, or their
      // reports were rate-limited). The kernel saw its connect() (latency known), so every
      // segment in the final counters is this connection's: the SYNs count as sent.
      if (r.latency_ns() != 0) {
        Connection unseen;
        unseen.flow = flow;
        count(unseen, r.stats());
      }
    }
    ++flow->stats.connects[static_cast<int>(connect_result_of(r.error()))];
    flow->stats.last_update_ns = r.ts_ns();
    return;
  }
  // Every socket has a cookie: a record without one belongs to no connection. Keeping 0 out of
  // the index lets the batch loop trust a cookie match alone (a free slot's cookie is 0).
  if (r.cookie() == 0) return;
  if (!c && closed_.find(r.cookie()) != CookieIndex::kNone) return;

  switch (type) {
    case EventType::connect:
    case EventType::accept:
      if (!c) c = &add(r, true);
      ++c->flow->stats.connects[static_cast<int>(ConnectResult::ok)];
      // The handshake's srtt, shown until the first sample, an interval on; not an observation:
      // it is the RTT of a SYN, not of the connection's traffic (README, Metrics).
      if (r.stats().srtt_us) {
        count(*c, r.stats());
        c->srtt_us = r.stats().srtt_us;
        c->rttvar_us = r.stats().rttvar_us;
        c->snd_cwnd = r.stats().snd_cwnd;
      }
      if (type == EventType::connect) {
        c->connect_latency_ns = r.latency_ns();
        c->first_ns = r.ts_ns() - r.latency_ns();
        c->flow->stats.connect_latency.observe_ns(r.latency_ns());
      }
      break;
    case EventType::retransmit:
      if (!c) {
        c = &add(r, r.state() == kTcpSynSent);  // a retransmitted SYN is the connection's start
        if (r.state() != kTcpSynSent) {  // count this one: start from before it
          c->base.retransmits = r.stats().total_retrans - r.segs();
          c->seen.retransmits = c->base.retransmits;
        }
      }
      count(*c, r.stats());
      break;
    case EventType::rtt:
      sample(c ? *c : add(r, false), r, ++events_);
      return;
    case EventType::close:
      if (c) {
        count(*c, r.stats());
        // The final srtt is an observation too: a connection shorter than --rtt-interval has no
        // other, and a longer one's last interval would otherwise go unobserved.
        if (r.stats().srtt_us) c->flow->stats.rtt.observe_ns(uint64_t(r.stats().srtt_us) * 1000);
        c->flow->stats.last_update_ns = r.ts_ns();
        forget(*c, true);
      }
      return;
    case EventType::connect_failed:
      return;  // handled above
  }
  touch(*c, r, ++events_);
}

size_t ConnectionTable::expire_idle(uint64_t now_ns, uint64_t idle_ns) {
  size_t removed = 0;
  for (Connection& c : slots_) {
    if (c.flow && now_ns - c.last_ns >= idle_ns) {
      forget(c, false);
      ++evicted_idle_;
      ++removed;
    }
  }
  return removed;
}

}  // namespace netwatch
