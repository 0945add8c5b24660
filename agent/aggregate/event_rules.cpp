#include "aggregate/event_rules.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <fstream>

namespace netwatch::aggregate {
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

// The growth of the kernel's counters since c's previous event, into c's flow.
inline void count(Connection& c, const nw_tcp_stats& now) {
  Connection::Seen& seen = c.seen;
  FlowStats& f = c.flow->stats;
  f.retransmits += advance32(seen.retransmits, now.total_retrans);
  f.segments_sent += advance32(seen.segs_out, now.segs_out);
  f.bytes_sent += advance64(seen.bytes_sent, now.bytes_sent);
  f.bytes_received += advance64(seen.bytes_received, now.bytes_received);
}

// What every record of a live connection updates (the table stamps its recency).
inline void touch(Connection& c, const event::EventRecord& r) {
  c.state = r.state();
  c.last_ns = r.ts_ns();
}

// An RTT sample of a live connection, most of the records: inline in the batch loop.
inline void sample(Connection& c, const event::EventRecord& r) {
  const nw_tcp_stats& stats = r.stats();
  count(c, stats);
  // srtt, rttvar, cwnd: adjacent in both, so two moves instead of three.
  static_assert(offsetof(Connection, rttvar_us) == offsetof(Connection, srtt_us) + 4 &&
                offsetof(Connection, snd_cwnd) == offsetof(Connection, srtt_us) + 8 &&
                offsetof(nw_tcp_stats, rttvar_us) == offsetof(nw_tcp_stats, srtt_us) + 4 &&
                offsetof(nw_tcp_stats, snd_cwnd) == offsetof(nw_tcp_stats, srtt_us) + 8);
  std::memcpy(&c.srtt_us, &stats.srtt_us, 3 * sizeof(uint32_t));
  c.flow->stats.rtt.observe_ns(uint64_t(stats.srtt_us) * 1000);
  touch(c, r);
}

}  // namespace

EventRules::EventRules(FlowTable& flows, ConnectionTable& connections, WorkloadOf workload_of)
    : flows_(flows), connections_(connections), workload_of_(std::move(workload_of)) {}

void EventRules::add_records_by_type(const std::array<uint64_t, event::kEventTypeCount>& counts) {
  for (int t = 0; t < event::kEventTypeCount; ++t) by_type_[t] += counts[t];
}

FlowKey EventRules::flow_key(const event::Event& e) const {
  FlowKey k;
  k.direction = e.direction;
  k.peer = e.daddr;
  switch (e.direction) {
    case event::Direction::outbound:
      k.port = e.dport;
      break;
    case event::Direction::inbound:
      k.port = e.sport;
      break;
    case event::Direction::unknown:
      k.port = guess_service_port(e.sport, e.dport);
      break;
  }
  k.workload = workload_of_ ? workload_of_(e.cgroup_id) : 0;
  return k;
}

Connection& EventRules::add(const event::EventRecord& r, bool from_start) {
  // Once per connection: its identity, decoded in full (the process name made printable).
  event::Event e;
  r.decode(e);
  FlowKey key = flow_key(e);
  Connection& c = connections_.insert(e.cookie, flows_.resolve(key, e.ts_ns));
  c.direction = e.direction;
  c.local = e.saddr;
  c.remote = e.daddr;
  c.local_port = e.sport;
  c.remote_port = e.dport;
  c.pid = e.pid;
  c.comm = e.comm;
  c.cgroup_id = e.cgroup_id;
  c.first_ns = e.ts_ns;
  c.workload = key.workload;
  // From the start, every count is this connection's; first seen mid-life, only growth is.
  if (!from_start) {
    c.base = {e.stats.total_retrans, e.stats.segs_out, e.stats.bytes_sent, e.stats.bytes_received};
    c.seen = {c.base.retransmits, c.base.segs_out, c.base.bytes_sent, c.base.bytes_received};
  }
  return c;
}

void EventRules::apply(std::span<const event::EventRecord> records) {
  by_type_[static_cast<int>(event::EventType::rtt)] += connections_.visit(
      records,
      [](Connection& c, const event::EventRecord& r) {
        if (r.type() != event::EventType::rtt) return false;
        sample(c, r);
        return true;
      },
      [this](const event::EventRecord& r, Connection* c) { apply_other(r, c); });
}

[[gnu::noinline]] void EventRules::apply_other(const event::EventRecord& r, Connection* c) {
  event::EventType type = r.type();
  ++by_type_[static_cast<int>(type)];
  if (type == event::EventType::retransmit && r.cookie() == 0) {
    // A SYN-ACK retransmitted for a request sock: no connection exists yet.
    event::Event e;
    r.decode(e);
    Flow& flow = flows_.resolve(flow_key(e), e.ts_ns);
    flow.stats.retransmits += e.segs;
    return;
  }
  if (type == event::EventType::connect_failed) {
    Flow* flow;
    if (c) {  // its SYN was retransmitted: the final counters hold any not yet reported
      count(*c, r.stats());
      flow = c->flow;
      connections_.release(*c, true);
    } else {
      event::Event e;
      r.decode(e);
      flow = &flows_.resolve(flow_key(e), e.ts_ns);
      // No entry: nothing of it was counted yet (its SYNs were not retransmitted, or their
      // reports were held back: on_retransmit() in bpf/netwatch.bpf.c). The kernel saw its connect() (latency known), so every
      // segment in the final counters is this connection's: the SYNs count as sent.
      if (r.latency_ns() != 0) {
        Connection unseen;
        unseen.flow = flow;
        count(unseen, r.stats());
      }
    }
    flows_.count_connect(*flow, connect_result_of(r.error()));
    flow->stats.last_update_ns = r.ts_ns();
    return;
  }
  // Every socket has a cookie: a record without one belongs to no connection. Keeping 0 out of
  // the table lets its batch loop trust a cookie match alone (a free slot's cookie is 0).
  if (r.cookie() == 0) return;
  if (!c && connections_.recently_closed(r.cookie())) return;

  switch (type) {
    case event::EventType::connect:
    case event::EventType::accept:
      if (!c) c = &add(r, true);
      flows_.count_connect(*c->flow, ConnectResult::ok);
      // The handshake's srtt, shown until the first sample, an interval on; not an observation:
      // it is the RTT of a SYN, not of the connection's traffic (README, Metrics).
      if (r.stats().srtt_us) {
        count(*c, r.stats());
        c->srtt_us = r.stats().srtt_us;
        c->rttvar_us = r.stats().rttvar_us;
        c->snd_cwnd = r.stats().snd_cwnd;
      }
      if (type == event::EventType::connect) {
        c->connect_latency_ns = r.latency_ns();
        c->first_ns = r.ts_ns() - r.latency_ns();
        c->flow->stats.connect_latency.observe_ns(r.latency_ns());
      }
      break;
    case event::EventType::retransmit:
      if (!c) {
        c = &add(r, r.state() == event::kTcpSynSent);  // a retransmitted SYN is the connection's start
        if (r.state() != event::kTcpSynSent) {         // count this one: start from before it
          c->base.retransmits = r.stats().total_retrans - r.segs();
          c->seen.retransmits = c->base.retransmits;
        }
      }
      count(*c, r.stats());
      break;
    case event::EventType::rtt: {
      Connection& live = c ? *c : add(r, false);
      sample(live, r);
      connections_.stamp(live);
      return;
    }
    case event::EventType::close:
      if (c) {
        count(*c, r.stats());
        // The final srtt is an observation too: a connection shorter than --rtt-interval has no
        // other, and a longer one's last interval would otherwise go unobserved.
        if (r.stats().srtt_us) c->flow->stats.rtt.observe_ns(uint64_t(r.stats().srtt_us) * 1000);
        c->flow->stats.last_update_ns = r.ts_ns();
        connections_.release(*c, true);
      }
      return;
    case event::EventType::connect_failed:
      return;  // handled above
  }
  touch(*c, r);
  connections_.stamp(*c);
}

}  // namespace netwatch::aggregate
