#include "agent/connection_table.h"

#include <algorithm>
#include <fstream>

namespace netwatch {
namespace {

// Moves a 32-bit kernel counter's growth into seen and returns it. Wraps are growth; a
// smaller value is an older event that arrived late (per-CPU perf buffers reorder).
uint64_t advance(uint32_t& seen, uint32_t now) {
  int32_t d = static_cast<int32_t>(now - seen);
  if (d <= 0) return 0;
  seen = now;
  return static_cast<uint64_t>(d);
}

uint64_t advance(uint64_t& seen, uint64_t now) {
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
  index_.reserve(std::min<size_t>(limits_.max_connections, 1 << 16));
}

FlowKey ConnectionTable::flow_key(const Event& e) const {
  FlowKey k;
  k.direction = e.direction;
  k.peer = e.daddr;
  switch (e.direction) {
    case Direction::outbound: k.port = e.dport; break;
    case Direction::inbound: k.port = e.sport; break;
    case Direction::unknown: k.port = guess_service_port(e.sport, e.dport); break;
  }
  k.workload = workload_of_ ? workload_of_(e.cgroup_id) : 0;
  return k;
}

Connection* ConnectionTable::find(uint64_t cookie) {
  auto it = index_.find(cookie);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.end(), lru_, it->second);  // now the most recently active
  return &*it->second;
}

Connection& ConnectionTable::track(const Event& e, bool from_start) {
  if (Connection* c = find(e.cookie)) return *c;
  if (index_.size() >= limits_.max_connections && !lru_.empty()) {
    forget(lru_.front(), false);  // the least recently active; its counts are already in its flow
    ++evicted_full_;
  }
  Connection& c = lru_.emplace_back();
  index_.emplace(e.cookie, std::prev(lru_.end()));
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
  if (!from_start) c.seen = e.stats;
  FlowKey key = flow_key(e);
  c.workload = key.workload;
  c.flow = &flows_.resolve(key, e.ts_ns);
  ++c.flow->stats.active;
  return c;
}

void ConnectionTable::count(Connection& c, const TcpStats& now) {
  FlowStats& f = c.flow->stats;
  uint64_t d;
  d = advance(c.seen.total_retrans, now.total_retrans);
  c.retransmits += d;
  f.retransmits += d;
  d = advance(c.seen.segs_out, now.segs_out);
  c.segs_out += d;
  f.segments_sent += d;
  d = advance(c.seen.bytes_sent, now.bytes_sent);
  c.bytes_sent += d;
  f.bytes_sent += d;
  d = advance(c.seen.bytes_received, now.bytes_received);
  c.bytes_received += d;
  f.bytes_received += d;
}

void ConnectionTable::forget(Connection& c, bool closed) {
  --c.flow->stats.active;
  if (closed) {
    // Late events of a closed connection (reordered per-CPU buffers) must not revive it.
    closed_.insert(c.cookie);
    closed_order_.push_back(c.cookie);
    if (closed_order_.size() > limits_.recently_closed) {
      closed_.erase(closed_order_.front());
      closed_order_.pop_front();
    }
  }
  auto it = index_.find(c.cookie);
  Lru::iterator node = it->second;
  index_.erase(it);
  lru_.erase(node);
}

void ConnectionTable::apply(const Event& e) {
  if (e.type == EventType::retransmit && e.cookie == 0) {
    // A SYN-ACK retransmitted for a request sock: no connection exists yet.
    Flow& flow = flows_.resolve(flow_key(e), e.ts_ns);
    flow.stats.retransmits += e.segs;
    return;
  }
  if (e.type == EventType::connect_failed) {
    Flow* flow;
    if (Connection* c = find(e.cookie)) {  // its SYN was retransmitted
      flow = c->flow;
      forget(*c, true);
    } else {
      flow = &flows_.resolve(flow_key(e), e.ts_ns);
    }
    ++flow->stats.connects[static_cast<int>(connect_result_of(e.error))];
    flow->stats.last_update_ns = e.ts_ns;
    return;
  }
  if (closed_.count(e.cookie)) return;

  Connection* c = nullptr;
  switch (e.type) {
    case EventType::connect:
    case EventType::accept:
      c = &track(e, true);
      ++c->flow->stats.connects[static_cast<int>(ConnectResult::ok)];
      if (e.type == EventType::connect) {
        c->connect_latency_ns = e.latency_ns;
        c->first_ns = e.ts_ns - e.latency_ns;
        c->flow->stats.connect_latency.observe_ns(e.latency_ns);
      }
      break;
    case EventType::retransmit: {
      bool first_sight = index_.find(e.cookie) == index_.end();
      c = &track(e, e.state == kTcpSynSent);  // a retransmitted SYN is the connection's start
      if (first_sight && e.state != kTcpSynSent) c->seen.total_retrans -= e.segs;  // count this one
      count(*c, e.stats);
      break;
    }
    case EventType::rtt:
      c = &track(e, false);
      count(*c, e.stats);
      c->srtt_us = e.stats.srtt_us;
      c->rttvar_us = e.stats.rttvar_us;
      c->snd_cwnd = e.stats.snd_cwnd;
      c->flow->stats.rtt.observe_ns(uint64_t(e.stats.srtt_us) * 1000);
      break;
    case EventType::close:
      if (Connection* known = find(e.cookie)) {
        count(*known, e.stats);
        known->flow->stats.last_update_ns = e.ts_ns;
        forget(*known, true);
      }
      return;
    case EventType::connect_failed:
      return;  // handled above
  }
  c->state = e.state;
  c->last_ns = e.ts_ns;
  c->flow->stats.last_update_ns = e.ts_ns;
}

size_t ConnectionTable::expire_idle(uint64_t now_ns, uint64_t idle_ns) {
  size_t removed = 0;
  while (!lru_.empty() && now_ns - lru_.front().last_ns >= idle_ns) {
    forget(lru_.front(), false);
    ++evicted_idle_;
    ++removed;
  }
  return removed;
}

}  // namespace netwatch
