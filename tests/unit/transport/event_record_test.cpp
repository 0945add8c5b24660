// The event path reads raw records (EventRecord) and decodes a connection's identity only when
// the connection is new: these hold that identity (addresses, ports, process, cgroup) and the
// printable name come out right whichever record a connection is first seen in, and that every
// other consumer still gets every field decoded.
#include "event/event_record.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "aggregate/aggregator.h"
#include "transport/event_reader.h"
#include "tests/support/event_builder.h"

namespace netwatch::transport {
namespace {

nw_event raw(uint8_t type, uint64_t cookie) {
  nw_event r;
  std::memset(&r, 0, sizeof(r));
  r.type = type;
  r.cookie = cookie;
  r.family = AF_INET;
  r.direction = NW_DIR_OUTBOUND;
  r.state = 1;
  r.ts_ns = 1'000'000'000 + cookie;
  r.cgroup_id = 42;
  r.pid = 4242;
  std::memcpy(r.comm, "cu\x1b[2Jrl\xff", 10);  // a terminal escape and a non-ASCII byte
  inet_pton(AF_INET, "10.0.0.1", r.saddr);
  inet_pton(AF_INET, "10.9.8.7", r.daddr);
  r.sport = 40001;
  r.dport = 443;
  r.stats.segs_out = 10;
  r.stats.bytes_sent = 1000;
  r.stats.srtt_us = 250;
  return r;
}

// Records through the real reader into the real aggregator, as the agent runs them.
struct Pipeline {
  aggregate::Aggregator aggregator{
      aggregate::AggregatorConfig{}, [](uint64_t cgroup) {
        return cgroup == 42 ? k8s::WorkloadLabels{"shop", "cart-1", "app"} : k8s::WorkloadLabels{};
      }};
  EventReader reader{aggregator};

  void deliver(const nw_event& r) { reader.deliver(&r, sizeof(r)); }
  std::vector<aggregate::ConnectionView> connections() {
    reader.flush();
    return aggregator.snapshot(0, 0)->connections;
  }
};

void expect_identity_of(const nw_event& r, const aggregate::ConnectionView& v) {
  const aggregate::ConnectionRow& c = v.connection;
  EXPECT_EQ(c.cookie, r.cookie);
  EXPECT_EQ(c.direction, event::Direction::outbound);
  EXPECT_EQ(c.local.to_string(), "10.0.0.1");
  EXPECT_EQ(c.remote.to_string(), "10.9.8.7");
  EXPECT_EQ(c.local_port, 40001);
  EXPECT_EQ(c.remote_port, 443);
  EXPECT_EQ(c.pid, 4242u);
  EXPECT_EQ(std::string_view(c.comm.data()), "cu?[2Jrl?");  // sanitised when stored
  EXPECT_EQ(c.cgroup_id, 42u);
  EXPECT_EQ(v.workload.pod, "cart-1");
}

TEST(EventRecord, a_connection_first_seen_in_an_rtt_sample_has_its_identity_decoded) {
  Pipeline p;
  nw_event r = raw(NW_EV_RTT, 7);
  p.deliver(r);
  auto conns = p.connections();
  ASSERT_EQ(conns.size(), 1u);
  expect_identity_of(r, conns[0]);
  EXPECT_EQ(conns[0].connection.srtt_us, 250u);
  auto flows = p.aggregator.snapshot(0, 0)->flows;
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].key.peer.to_string(), "10.9.8.7");
  EXPECT_EQ(flows[0].key.port, 443);
  EXPECT_EQ(flows[0].workload.pod, "cart-1");
}

TEST(EventRecord, every_first_record_type_decodes_the_identity) {
  for (uint8_t type : {NW_EV_CONNECT, NW_EV_ACCEPT, NW_EV_RETRANSMIT, NW_EV_RTT}) {
    Pipeline p;
    nw_event r = raw(type, 9);
    if (type == NW_EV_ACCEPT) r.direction = NW_DIR_INBOUND;
    p.deliver(r);
    auto conns = p.connections();
    ASSERT_EQ(conns.size(), 1u) << int(type);
    if (type == NW_EV_ACCEPT) continue;  // its direction differs; the rest is the same decode
    expect_identity_of(r, conns[0]);
  }
}

TEST(EventRecord, an_ipv4_mapped_first_record_is_stored_as_ipv4) {
  Pipeline p;
  nw_event r = raw(NW_EV_RTT, 3);
  r.family = AF_INET6;
  std::memset(r.saddr, 0, 16);
  std::memset(r.daddr, 0, 16);
  inet_pton(AF_INET6, "::ffff:10.0.0.1", r.saddr);
  inet_pton(AF_INET6, "::ffff:10.9.8.7", r.daddr);
  p.deliver(r);
  auto conns = p.connections();
  ASSERT_EQ(conns.size(), 1u);
  expect_identity_of(r, conns[0]);
  EXPECT_EQ(conns[0].connection.remote.family, 4);
}

TEST(EventRecord, later_records_update_the_counters_and_keep_the_first_identity) {
  Pipeline p;
  p.deliver(raw(NW_EV_CONNECT, 5));
  nw_event later = raw(NW_EV_RTT, 5);
  later.stats.segs_out = 25;
  later.stats.srtt_us = 900;
  later.stats.snd_cwnd = 33;
  later.state = 4;
  std::memcpy(later.comm, "other", 6);
  p.deliver(later);
  auto conns = p.connections();
  ASSERT_EQ(conns.size(), 1u);
  expect_identity_of(later, conns[0]);
  EXPECT_EQ(conns[0].connection.segs_out, 25u);  // opened by connect: counted from 0
  EXPECT_EQ(conns[0].connection.srtt_us, 900u);
  EXPECT_EQ(conns[0].connection.snd_cwnd, 33u);
  EXPECT_EQ(conns[0].connection.state, 4);
  EXPECT_EQ(conns[0].connection.last_ns, later.ts_ns);
}

TEST(EventRecord, sinks_without_on_records_get_every_field_decoded) {
  struct Collector : event::EventSink {
    std::vector<event::Event> events;
    void on_event(const event::Event& e) override { events.push_back(e); }
  } sink;
  EventReader reader(sink);
  nw_event r = raw(NW_EV_RETRANSMIT, 11);
  r.segs = 3;
  reader.deliver(&r, sizeof(r));
  reader.flush();
  ASSERT_EQ(sink.events.size(), 1u);
  auto expected = event::decode_event(&r, sizeof(r));
  ASSERT_TRUE(expected);
  const event::Event& e = sink.events[0];
  EXPECT_EQ(e.comm_view(), "cu?[2Jrl?");
  EXPECT_EQ(e.saddr.to_string(), "10.0.0.1");
  EXPECT_EQ(e.daddr.to_string(), "10.9.8.7");
  EXPECT_EQ(e.sport, 40001);
  EXPECT_EQ(e.dport, 443);
  EXPECT_EQ(e.pid, 4242u);
  EXPECT_EQ(e.cgroup_id, 42u);
  EXPECT_EQ(e.segs, 3u);
  EXPECT_EQ(e.stats.segs_out, 10u);
  EXPECT_EQ(e, *expected);
}

TEST(EventRecord, encode_then_decode_gives_the_event_back) {
  for (const char* peer : {"10.9.8.7", "2001:db8::7"}) {
    event::Event e = test::EventBuilder(event::EventType::close, 99).peer(peer).stats(3, 40, 5000, 6000, 700).cgroup(8);
    e.pid = 31;
    e.netns_ino = 4026531840u;
    std::memcpy(e.comm.data(), "nginx", 6);
    e.duration_ns = 123;
    e.segs = 2;
    e.error = 0;
    event::Event back;
    nw_event raw;
    event::EventRecord::encode(e, raw).decode(back);
    EXPECT_EQ(back, e) << peer;
  }
}

// Within one batch a close frees a slot that a new connection takes at once; a late record of
// the closed cookie must then neither find the new connection nor revive the old one.
TEST(EventRecord, a_batch_gives_what_one_record_at_a_time_gives) {
  auto build = [] {
    std::vector<nw_event> rs;
    for (uint64_t cookie = 1; cookie <= 4; ++cookie) rs.push_back(raw(NW_EV_CONNECT, cookie));
    nw_event close = raw(NW_EV_CLOSE, 2);
    close.stats.segs_out = 30;
    rs.push_back(close);
    nw_event fresh = raw(NW_EV_CONNECT, 5);  // takes cookie 2's slot
    std::memcpy(fresh.comm, "fresh", 6);
    rs.push_back(fresh);
    nw_event late = raw(NW_EV_RTT, 2);
    late.stats.segs_out = 29;
    rs.push_back(late);
    for (uint64_t cookie : {5, 1, 5}) {
      nw_event s = raw(NW_EV_RTT, cookie);
      s.stats.segs_out = 50;
      rs.push_back(s);
    }
    return rs;
  };
  Pipeline batched, single;
  for (const nw_event& r : build()) batched.deliver(r);
  for (const nw_event& r : build()) {
    single.deliver(r);
    single.reader.flush();
  }
  auto a = batched.connections(), b = single.connections();
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].connection.cookie, b[i].connection.cookie);
    EXPECT_EQ(a[i].connection.segs_out, b[i].connection.segs_out);
    EXPECT_EQ(std::string_view(a[i].connection.comm.data()), std::string_view(b[i].connection.comm.data()));
  }
  EXPECT_EQ(a.back().connection.cookie, 5u);
  EXPECT_EQ(std::string_view(a.back().connection.comm.data()), "fresh");
  EXPECT_EQ(a.back().connection.segs_out, 50u);
  auto flows = batched.aggregator.snapshot(0, 0)->flows;
  ASSERT_EQ(flows.size(), 1u);
  // Opened by connect, so counted from 0: 2 closed at 30, 1 and 5 sampled at 50, 3 and 4 at the
  // 10 their connect carried; the late 29 of 2 counts nowhere.
  EXPECT_EQ(flows[0].stats.segments_sent, 30u + 50 + 50 + 10 + 10);
}

}  // namespace
}  // namespace netwatch::transport
