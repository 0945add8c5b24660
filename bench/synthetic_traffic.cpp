#include "bench/synthetic_traffic.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmath>
#include <cstring>

#include "transport/event_reader.h"

namespace netwatch::bench {
namespace {

constexpr uint16_t kServicePorts[] = {443, 80, 5432, 6379, 9092, 8080, 3306, 11211};
constexpr uint32_t kLocalAddress = 0x0a000001;  // 10.0.0.1: the node

}  // namespace

SyntheticTraffic::SyntheticTraffic(size_t live_connections, size_t flows, uint64_t seed, EventMix mix)
    : mix_(mix), rng_(seed) {
  // Flows: a peer 10.1.x.y and a service port each; most outbound, a quarter inbound. RTTs
  // log-uniform from 30 us (same host) to 100 ms (another continent).
  for (size_t f = 0; f < flows; ++f) {
    double rtt = 30.0 * std::pow(100'000.0 / 30.0, std::uniform_real_distribution<double>(0, 1)(rng_));
    flows_.push_back({static_cast<uint8_t>(f % 4 == 3 ? NW_DIR_INBOUND : NW_DIR_OUTBOUND),
                      htonl(0x0a010000u | static_cast<uint32_t>(f / 250) << 8 | static_cast<uint32_t>(f % 250 + 1)),
                      kServicePorts[f % std::size(kServicePorts)], static_cast<uint32_t>(rtt)});
  }
  slots_.resize(live_connections);
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].flow = static_cast<uint32_t>(rng_() % flows_.size());
}

nw_event SyntheticTraffic::record(const Slot& slot, uint8_t type) {
  const FlowShape& flow = flows_[slot.flow];
  nw_event e;
  std::memset(&e, 0, sizeof(e));
  e.ts_ns = now_ns_ += 1000;  // 1M events/s of kernel time
  e.cookie = slot.cookie;
  e.cgroup_id = 1;
  e.netns_ino = 4026531840u;
  uint32_t local = htonl(kLocalAddress);
  std::memcpy(e.saddr, &local, 4);
  std::memcpy(e.daddr, &flow.peer, 4);
  bool outbound = flow.direction == NW_DIR_OUTBOUND;
  e.sport = outbound ? slot.sport : flow.service_port;
  e.dport = outbound ? flow.service_port : slot.sport;
  if (outbound) {  // the process that connected, kept in the socket's storage: on every event
    e.pid = 4242;
    std::memcpy(e.comm, "envoy", 6);
  }
  e.family = AF_INET;
  e.state = type == NW_EV_CLOSE ? 7 : 1;  // TCP_CLOSE, TCP_ESTABLISHED
  e.type = type;
  e.direction = flow.direction;
  e.stats.srtt_us = flow.base_rtt_us + static_cast<uint32_t>(rng_() % (flow.base_rtt_us / 4 + 1));
  e.stats.rttvar_us = flow.base_rtt_us / 8;
  e.stats.snd_cwnd = 10;
  e.stats.total_retrans = slot.total_retrans;
  e.stats.segs_out = slot.segs_out;
  e.stats.segs_in = slot.segs_out;
  e.stats.bytes_sent = slot.bytes_sent;
  e.stats.bytes_acked = slot.bytes_sent;
  e.stats.bytes_received = slot.bytes_received;
  return e;
}

void SyntheticTraffic::open(Slot& slot) {
  slot.cookie = next_cookie_++;
  slot.sport = static_cast<uint16_t>(32768 + rng_() % 28000);
  slot.segs_out = slot.total_retrans = 0;
  slot.bytes_sent = slot.bytes_received = 0;
}

std::vector<nw_event> SyntheticTraffic::opening() {
  std::vector<nw_event> out;
  out.reserve(slots_.size());
  for (Slot& slot : slots_) {
    open(slot);
    bool outbound = flows_[slot.flow].direction == NW_DIR_OUTBOUND;
    nw_event e = record(slot, outbound ? NW_EV_CONNECT : NW_EV_ACCEPT);
    if (outbound) e.latency_ns = uint64_t(flows_[slot.flow].base_rtt_us) * 1000;
    out.push_back(e);
  }
  return out;
}

void SyntheticTraffic::next(size_t n, std::vector<nw_event>& out) {
  for (size_t i = 0; i < n; ++i) {
    Slot& slot = slots_[rng_() % slots_.size()];
    unsigned r = static_cast<unsigned>(rng_() % 100);
    // Traffic since the connection's last event: what its cumulative counters have grown by.
    uint32_t segs = 1 + static_cast<uint32_t>(rng_() % 64);
    slot.segs_out += segs;
    slot.bytes_sent += segs * 1448ull;
    slot.bytes_received += (rng_() % 32) * 1448ull;
    if (r < mix_.rtt) {
      out.push_back(record(slot, NW_EV_RTT));
    } else if (r < mix_.rtt + mix_.retransmit) {
      slot.total_retrans += 1;
      nw_event e = record(slot, NW_EV_RETRANSMIT);
      e.segs = 1;
      out.push_back(e);
    } else if (r < mix_.rtt + mix_.retransmit + mix_.close_open && i + 1 < n) {
      // A close and the next connection's open: two records.
      out.push_back(record(slot, NW_EV_CLOSE));
      open(slot);
      bool outbound = flows_[slot.flow].direction == NW_DIR_OUTBOUND;
      nw_event e = record(slot, outbound ? NW_EV_CONNECT : NW_EV_ACCEPT);
      if (outbound) e.latency_ns = uint64_t(flows_[slot.flow].base_rtt_us) * 1000;
      out.push_back(e);
      ++i;
    } else {
      out.push_back(record(slot, NW_EV_RTT));
    }
  }
}

std::unique_ptr<aggregate::Aggregator> aggregate_synthetic(size_t live, size_t flows, size_t records) {
  aggregate::AggregatorConfig config;
  config.max_connections = live + 16;
  config.max_series = 1'000'000;  // every flow its own, whatever the default budget
  config.churn_new_flows_per_minute = 0;
  auto aggregator = std::make_unique<aggregate::Aggregator>(config);
  transport::EventReader reader(*aggregator);
  SyntheticTraffic traffic(live, flows);
  for (const nw_event& e : traffic.opening()) reader.deliver(&e, sizeof(e));
  std::vector<nw_event> events;
  traffic.next(records, events);
  for (const nw_event& e : events) reader.deliver(&e, sizeof(e));
  return aggregator;
}

}  // namespace netwatch::bench
