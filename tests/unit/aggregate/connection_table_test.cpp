// The event rules over the connection table: deltas into flows, monotonic counters, eviction, late events.
#include "aggregate/event_rules.h"

#include <gtest/gtest.h>

#include "tests/support/event_builder.h"

namespace netwatch::aggregate {
namespace {

using test::EventBuilder;

struct TableTest : ::testing::Test {
  FlowTable flows{FlowTableLimits{.max_series = 1000000, .max_flows = 1000}};
  ConnectionTable table{ConnectionTableLimits{3, 16}};
  EventRules rules{flows, table, nullptr};

  const FlowStats& flow(event::Direction dir, const std::string& peer, uint16_t port) {
    FlowKey k;
    k.direction = dir;
    k.peer = test::ip(peer);
    k.port = port;
    const FlowStats* found = nullptr;
    flows.for_each([&](const Flow& f) {
      if (f.key == k) found = &f.stats;
    });
    EXPECT_NE(found, nullptr);
    static FlowStats empty;
    return found ? *found : empty;
  }
};

TEST_F(TableTest, connect_counts_ok_and_observes_latency) {
  rules.apply(EventBuilder(event::EventType::connect, 1).latency(2'000'000));
  const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
  EXPECT_EQ(f.connects[int(ConnectResult::ok)], 1u);
  EXPECT_EQ(f.connect_latency.count, 1u);
  EXPECT_EQ(f.active, 1);
  EXPECT_EQ(table.size(), 1u);
}

TEST_F(TableTest, inbound_flow_uses_the_local_port_never_the_ephemeral_one) {
  rules.apply(EventBuilder(event::EventType::accept, 1, event::Direction::inbound).ports(8443, 51515));
  const FlowStats& f = flow(event::Direction::inbound, "10.0.0.2", 8443);
  EXPECT_EQ(f.connects[int(ConnectResult::ok)], 1u);
  EXPECT_EQ(f.connect_latency.count, 0u);  // the histogram is outbound SYN -> ESTABLISHED only
}

TEST_F(TableTest, counters_grow_as_events_arrive_not_at_close) {
  rules.apply(EventBuilder(event::EventType::connect, 1));
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(0, 10, 1000, 50));
  rules.apply(EventBuilder(event::EventType::retransmit, 1).segs(2).stats(2, 14, 1500, 50));
  const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
  EXPECT_EQ(f.retransmits, 2u);
  EXPECT_EQ(f.segments_sent, 14u);
  EXPECT_EQ(f.bytes_sent, 1500u);
  rules.apply(EventBuilder(event::EventType::close, 1).stats(3, 20, 2000, 60));
  EXPECT_EQ(f.retransmits, 3u);
  EXPECT_EQ(f.segments_sent, 20u);
  EXPECT_EQ(f.bytes_sent, 2000u);
  EXPECT_EQ(f.bytes_received, 60u);
  EXPECT_EQ(f.active, 0);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(TableTest, flow_counters_never_go_backwards_across_close_and_new_connections) {
  uint64_t last_segments = 0;
  for (uint64_t cookie = 1; cookie <= 5; ++cookie) {
    rules.apply(EventBuilder(event::EventType::connect, cookie));
    for (uint32_t segs = 5; segs <= 15; segs += 5) {
      rules.apply(EventBuilder(event::EventType::rtt, cookie).stats(0, segs));
      const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
      EXPECT_GE(f.segments_sent, last_segments);
      last_segments = f.segments_sent;
    }
    rules.apply(EventBuilder(event::EventType::close, cookie).stats(0, 16));
    EXPECT_GE(flow(event::Direction::outbound, "10.0.0.2", 80).segments_sent, last_segments);
  }
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).segments_sent, 5u * 16);
}

TEST_F(TableTest, reordered_older_event_does_not_subtract) {
  rules.apply(EventBuilder(event::EventType::connect, 1));
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(4, 40, 4000));
  rules.apply(EventBuilder(event::EventType::retransmit, 1).segs(1).stats(3, 30, 3000));  // older, late
  const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
  EXPECT_EQ(f.retransmits, 4u);
  EXPECT_EQ(f.segments_sent, 40u);
  EXPECT_EQ(f.bytes_sent, 4000u);
}

TEST_F(TableTest, a_32_bit_kernel_counter_that_wraps_keeps_counting) {
  // segs_out and total_retrans are 32 bits in the kernel: a long-lived fast connection wraps them.
  rules.apply(EventBuilder(event::EventType::connect, 1));
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(0x7ffffff0u, 0x7ffffff0u));  // growth < 2^31 per event
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(0xeffffff0u, 0xeffffff0u));
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(0x10, 0x10));                // past the wrap
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(0xeffffff8u, 0xeffffff8u));  // late: before the wrap
  const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
  EXPECT_EQ(f.segments_sent, 0x1'0000'0010u);
  EXPECT_EQ(f.retransmits, 0x1'0000'0010u);
  uint64_t connection_segs = 0;
  table.for_each([&](const Connection& c) { connection_segs = c.segs_out(); });
  EXPECT_EQ(connection_segs, 0x1'0000'0010u);
}

TEST_F(TableTest, connection_first_seen_mid_life_counts_only_growth) {
  // Existed before netwatch: its first event carries history that is not ours to count.
  rules.apply(
      EventBuilder(event::EventType::rtt, 9, event::Direction::unknown).ports(45000, 443).stats(7, 1000, 1 << 20));
  rules.apply(EventBuilder(event::EventType::rtt, 9, event::Direction::unknown)
                  .ports(45000, 443)
                  .stats(8, 1010, (1 << 20) + 10));
  const FlowStats& f = flow(event::Direction::unknown, "10.0.0.2", 443);  // the non-ephemeral end is the service
  EXPECT_EQ(f.retransmits, 1u);
  EXPECT_EQ(f.segments_sent, 10u);
  EXPECT_EQ(f.bytes_sent, 10u);
}

TEST_F(TableTest, first_sight_retransmit_counts_its_own_segments) {
  rules.apply(EventBuilder(event::EventType::retransmit, 4).segs(2).stats(9, 500));
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).retransmits, 2u);
}

TEST_F(TableTest, retransmitted_syn_starts_the_connection_from_zero) {
  rules.apply(EventBuilder(event::EventType::retransmit, 4).state(event::kTcpSynSent).segs(1).stats(1, 2));
  rules.apply(EventBuilder(event::EventType::connect, 4).latency(1'000'000'000));
  const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
  EXPECT_EQ(f.retransmits, 1u);
  EXPECT_EQ(f.segments_sent, 2u);
  EXPECT_EQ(f.connects[int(ConnectResult::ok)], 1u);
  EXPECT_EQ(f.active, 1);
}

TEST_F(TableTest, failed_connects_count_by_reason) {
  rules.apply(EventBuilder(event::EventType::connect_failed, 1).error(ECONNREFUSED));
  rules.apply(EventBuilder(event::EventType::connect_failed, 2).error(ETIMEDOUT));
  rules.apply(EventBuilder(event::EventType::connect_failed, 3).error(ECONNRESET));
  rules.apply(EventBuilder(event::EventType::connect_failed, 4).error(EHOSTUNREACH));
  rules.apply(EventBuilder(event::EventType::connect_failed, 5).error(ECONNREFUSED));
  rules.apply(EventBuilder(event::EventType::connect_failed, 6).error(0));
  rules.apply(EventBuilder(event::EventType::connect_failed, 7).error(ECONNABORTED));
  const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
  EXPECT_EQ(f.connects[int(ConnectResult::refused)], 2u);
  EXPECT_EQ(f.connects[int(ConnectResult::timeout)], 1u);
  EXPECT_EQ(f.connects[int(ConnectResult::reset)], 1u);
  EXPECT_EQ(f.connects[int(ConnectResult::error)], 2u);  // EHOSTUNREACH, and a real ECONNABORTED
  EXPECT_EQ(f.connects[int(ConnectResult::closed_before_established)], 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(TableTest, failed_connect_never_seen_before_counts_its_syns_as_sent) {
  // Refused at the first SYN: no retransmit, so no entry; its final counters are all its own.
  rules.apply(EventBuilder(event::EventType::connect_failed, 6).error(ECONNREFUSED).latency(40'000).stats(0, 1));
  rules.apply(EventBuilder(event::EventType::connect_failed, 7).error(ETIMEDOUT).latency(3'000'000'000).stats(2, 3));
  const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
  EXPECT_EQ(f.segments_sent, 4u);
  EXPECT_EQ(f.retransmits, 2u);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(TableTest, failed_connect_whose_start_was_not_seen_counts_no_segments) {
  // latency 0: its connect() predates netwatch, so its counters are not all in netwatch's time.
  rules.apply(EventBuilder(event::EventType::connect_failed, 6).error(ETIMEDOUT).stats(4, 5));
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).segments_sent, 0u);
}

TEST_F(TableTest, failed_connect_with_an_entry_counts_its_segments_once) {
  rules.apply(EventBuilder(event::EventType::retransmit, 4).state(event::kTcpSynSent).segs(1).stats(1, 2));
  rules.apply(EventBuilder(event::EventType::connect_failed, 4).error(ETIMEDOUT).latency(3'000'000'000).stats(2, 3));
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).segments_sent, 3u);
}

TEST_F(TableTest, failed_connect_after_syn_retransmits_releases_the_connection) {
  rules.apply(EventBuilder(event::EventType::retransmit, 4).state(event::kTcpSynSent).segs(1).stats(1, 2));
  rules.apply(EventBuilder(event::EventType::connect_failed, 4).error(ETIMEDOUT));
  const FlowStats& f = flow(event::Direction::outbound, "10.0.0.2", 80);
  EXPECT_EQ(f.active, 0);
  EXPECT_EQ(f.retransmits, 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(TableTest, failed_connect_carries_syn_retransmits_not_yet_reported) {
  // The kernel reported the first SYN retransmit; two more fell inside its report interval.
  rules.apply(EventBuilder(event::EventType::retransmit, 4).state(event::kTcpSynSent).segs(1).stats(1, 2));
  rules.apply(EventBuilder(event::EventType::connect_failed, 4).error(ETIMEDOUT).stats(3, 4));
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).retransmits, 3u);
}

TEST_F(TableTest, rate_limited_retransmits_are_counted_from_any_later_event) {
  rules.apply(EventBuilder(event::EventType::connect, 4));
  rules.apply(EventBuilder(event::EventType::retransmit, 4).segs(2).stats(2, 100));  // the first: at once
  rules.apply(EventBuilder(event::EventType::rtt, 4).stats(5, 150));                 // 3 more, not reported
  rules.apply(EventBuilder(event::EventType::retransmit, 4).segs(4).stats(6, 160));  // segs since the last report
  rules.apply(EventBuilder(event::EventType::close, 4).stats(9, 200));               // 3 more at close
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).retransmits, 9u);
}

TEST_F(TableTest, rtt_histogram_observes_each_sample_and_the_final_srtt_at_close) {
  // srtt 40 us at the handshake: shown, not observed. 300 us a sample later, 500 us at close.
  rules.apply(EventBuilder(event::EventType::connect, 4).stats(0, 1, 0, 0, 40));
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).rtt.count, 0u);
  bool shown = false;
  table.for_each([&](const Connection& c) { shown = c.srtt_us == 40; });
  EXPECT_TRUE(shown) << "the handshake's srtt is the connection's until its first sample";
  rules.apply(EventBuilder(event::EventType::rtt, 4).stats(0, 10, 0, 0, 300));
  rules.apply(EventBuilder(event::EventType::close, 4).stats(0, 20, 0, 0, 500));
  const LatencyHistogram& h = flow(event::Direction::outbound, "10.0.0.2", 80).rtt;
  EXPECT_EQ(h.count, 2u);
  EXPECT_EQ(h.sum_ns, 800'000u);
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).segments_sent, 20u);
}

TEST_F(TableTest, short_connection_is_observed_once_with_its_final_srtt) {
  rules.apply(EventBuilder(event::EventType::accept, 5, event::Direction::inbound).stats(0, 1, 0, 0, 30));
  rules.apply(EventBuilder(event::EventType::close, 5, event::Direction::inbound).stats(0, 9, 0, 0, 250));
  flows.for_each([&](const Flow& f) {
    EXPECT_EQ(f.stats.rtt.count, 1u);
    EXPECT_EQ(f.stats.rtt.sum_ns, 250'000u);
  });
}

TEST_F(TableTest, full_table_evicts_the_least_recently_active) {
  for (uint64_t cookie = 1; cookie <= 3; ++cookie) rules.apply(EventBuilder(event::EventType::connect, cookie));
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(0, 5));  // 1 is now the most recent; 2 the least
  rules.apply(EventBuilder(event::EventType::connect, 4));
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.evicted_full(), 1u);
  bool has2 = false;
  table.for_each([&](const Connection& c) { has2 |= c.cookie == 2; });
  EXPECT_FALSE(has2);
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).active, 3);
}

TEST_F(TableTest, evicted_connection_returns_without_double_counting) {
  rules.apply(EventBuilder(event::EventType::connect, 1).at(1'000'000'000));
  rules.apply(EventBuilder(event::EventType::rtt, 1).at(2'000'000'000).stats(0, 100));
  EXPECT_EQ(table.expire_idle(400'000'000'000, 300'000'000'000), 1u);
  EXPECT_EQ(table.evicted_idle(), 1u);
  rules.apply(EventBuilder(event::EventType::rtt, 1).at(401'000'000'000).stats(0, 130));
  rules.apply(EventBuilder(event::EventType::rtt, 1).at(402'000'000'000).stats(0, 150));
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).segments_sent, 120u);  // 100, then only growth after 130
}

// A live connection's events reach its flow's last update when it leaves the table (expiry
// looks at flows without live connections only): the flow idles from the last event, not the
// connect.
TEST_F(TableTest, a_flow_idles_from_its_connections_last_event) {
  rules.apply(EventBuilder(event::EventType::connect, 1).at(1'000'000'000));
  rules.apply(EventBuilder(event::EventType::rtt, 1).at(100'000'000'000).stats(0, 10));
  EXPECT_EQ(flows.expire_idle(200'000'000'000, 1'000'000'000), 0u);  // a live connection
  EXPECT_EQ(table.expire_idle(500'000'000'000, 300'000'000'000), 1u);
  EXPECT_EQ(flows.expire_idle(650'000'000'000, 600'000'000'000), 0u);  // 550 s since the rtt
  EXPECT_EQ(flows.expire_idle(701'000'000'000, 600'000'000'000), 1u);
}

TEST_F(TableTest, late_events_of_a_closed_connection_are_ignored) {
  rules.apply(EventBuilder(event::EventType::connect, 1));
  rules.apply(EventBuilder(event::EventType::close, 1).stats(0, 10));
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(0, 9));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(flow(event::Direction::outbound, "10.0.0.2", 80).active, 0);
}

TEST_F(TableTest, synack_retransmit_without_socket_counts_in_the_inbound_flow) {
  rules.apply(
      EventBuilder(event::EventType::retransmit, 0, event::Direction::inbound).state(3).segs(1).ports(443, 50000));
  EXPECT_EQ(flow(event::Direction::inbound, "10.0.0.2", 443).retransmits, 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(TableTest, workload_comes_from_the_cgroup) {
  FlowTable f2{FlowTableLimits{.max_series = 1000000, .max_flows = 100}};
  ConnectionTable t2;
  EventRules rules2{f2, t2, [](uint64_t cgroup) { return cgroup == 77 ? 5u : 0u; }};
  rules2.apply(EventBuilder(event::EventType::connect, 1).cgroup(77));
  rules2.apply(EventBuilder(event::EventType::connect, 2).cgroup(1));
  EXPECT_EQ(f2.size(), 2u);
  t2.for_each([](const Connection& c) { EXPECT_EQ(c.workload, c.cookie == 1 ? 5u : 0u); });
}

}  // namespace
}  // namespace netwatch::aggregate
