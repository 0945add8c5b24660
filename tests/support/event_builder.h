// Builds decoded events for the aggregation tests, the way the kernel would report them.
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "event/event.h"
#include "event/event_record.h"

namespace netwatch::test {

inline event::IpAddress ip(const std::string& text) {
  event::IpAddress a;
  if (text.find(':') != std::string::npos) {
    a.family = 6;
    inet_pton(AF_INET6, text.c_str(), a.bytes.data());
  } else {
    a.family = 4;
    inet_pton(AF_INET, text.c_str(), a.bytes.data());
  }
  return a;
}

struct EventBuilder {
  event::Event e;

  EventBuilder(event::EventType type, uint64_t cookie, event::Direction dir = event::Direction::outbound) {
    e.type = type;
    e.cookie = cookie;
    e.direction = dir;
    e.saddr = ip("10.0.0.1");
    e.daddr = ip("10.0.0.2");
    e.sport = dir == event::Direction::inbound ? 80 : 40000;
    e.dport = dir == event::Direction::inbound ? 40000 : 80;
    e.state = event::kTcpEstablished;
    e.ts_ns = 1'000'000'000;
  }
  EventBuilder& at(uint64_t ts_ns) {
    e.ts_ns = ts_ns;
    return *this;
  }
  EventBuilder& peer(const std::string& addr) {
    e.daddr = ip(addr);
    return *this;
  }
  EventBuilder& ports(uint16_t local, uint16_t remote) {
    e.sport = local;
    e.dport = remote;
    return *this;
  }
  EventBuilder& state(uint8_t s) {
    e.state = s;
    return *this;
  }
  EventBuilder& latency(uint64_t ns) {
    e.latency_ns = ns;
    return *this;
  }
  EventBuilder& error(int err) {
    e.error = err;
    return *this;
  }
  EventBuilder& segs(uint32_t n) {
    e.segs = n;
    return *this;
  }
  EventBuilder& cgroup(uint64_t id) {
    e.cgroup_id = id;
    return *this;
  }
  EventBuilder& stats(uint32_t retrans, uint32_t segs_out, uint64_t sent = 0, uint64_t received = 0,
                      uint32_t srtt_us = 100) {
    e.stats.total_retrans = retrans;
    e.stats.segs_out = segs_out;
    e.stats.bytes_sent = sent;
    e.stats.bytes_received = received;
    e.stats.srtt_us = srtt_us;
    return *this;
  }
  operator event::Event() const { return e; }
  // What the kernel would have sent for it: the form the connection table reads. A view of the
  // builder's own copy: valid while the builder is (to the end of `table.apply(EventBuilder(...))`).
  operator event::EventRecord() const { return event::EventRecord::encode(e, raw); }
  mutable nw_event raw;
};

// A bare RTT record as the kernel lays it out, for the reader tests: srtt is 3 x cookie, so a
// test can tell a record's fields arrived with it.
inline nw_event raw_rtt(uint64_t cookie) {
  nw_event raw;
  std::memset(&raw, 0, sizeof(raw));
  raw.type = NW_EV_RTT;
  raw.family = AF_INET;
  raw.cookie = cookie;
  raw.stats.srtt_us = static_cast<uint32_t>(cookie * 3);
  return raw;
}

}  // namespace netwatch::test
