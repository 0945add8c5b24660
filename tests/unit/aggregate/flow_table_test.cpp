// The series budget: staged folding that loses no count, and recovery.
#include "aggregate/flow_table.h"

#include <gtest/gtest.h>

#include "tests/support/event_builder.h"

namespace netwatch::aggregate {
namespace {

FlowKey key(const std::string& peer, uint16_t port, event::Direction dir = event::Direction::outbound) {
  FlowKey k;
  k.direction = dir;
  k.peer = test::ip(peer);
  k.port = port;
  return k;
}

std::string peer_n(int i) { return "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256); }

TEST(FlowTable, distinct_keys_get_their_own_flows_under_budget) {
  FlowTable t(FlowTableLimits{.max_series = 1000000, .max_flows = 100});
  for (int i = 0; i < 50; ++i) t.resolve(key(peer_n(i), 80), 1).stats.retransmits += 1;
  EXPECT_EQ(t.size(), 50u);
  EXPECT_EQ(t.stage(), FoldLevel::none);
  EXPECT_EQ(t.folded_total(), 0u);
}

TEST(FlowTable, same_key_resolves_to_the_same_flow) {
  FlowTable t(FlowTableLimits{.max_series = 1000000, .max_flows = 100});
  Flow& a = t.resolve(key("10.0.0.1", 80), 1);
  Flow& b = t.resolve(key("10.0.0.1", 80), 2);
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &t.resolve(key("10.0.0.1", 81), 3));
  EXPECT_NE(&a, &t.resolve(key("10.0.0.1", 80, event::Direction::inbound), 3));
}

TEST(FlowTable, budget_folds_peers_first_keeping_the_port) {
  FlowTable t(FlowTableLimits{.max_series = 1000000, .max_flows = 100});  // full detail up to 80 flows
  for (int i = 0; i < 80; ++i) t.resolve(key(peer_n(i), 80), 1);
  Flow& folded = t.resolve(key("192.0.2.9", 443), 1);
  EXPECT_EQ(folded.key.fold, FoldLevel::peer);
  EXPECT_EQ(folded.key.port, 443);
  EXPECT_EQ(t.stage(), FoldLevel::peer);
  EXPECT_EQ(t.folded_total(), 1u);
  // Existing flows keep their detail.
  EXPECT_EQ(t.resolve(key(peer_n(3), 80), 1).key.fold, FoldLevel::none);
}

TEST(FlowTable, then_ports_then_everything_and_no_count_is_lost) {
  FlowTable t(FlowTableLimits{.max_series = 1000000, .max_flows = 100});
  uint64_t counted = 0;
  for (int i = 0; i < 2000; ++i) {
    FlowKey k = key(peer_n(i), static_cast<uint16_t>(1000 + i));
    k.workload = static_cast<uint32_t>(i % 500);  // many workloads: even port-folded keys differ
    t.resolve(k, 1).stats.retransmits += 1;
    ++counted;
  }
  EXPECT_LE(t.size(), 100u + 3);  // the hard cap
  EXPECT_EQ(t.stage(), FoldLevel::workload);
  uint64_t total = 0;
  std::array<int, 4> levels{};
  t.for_each([&](const Flow& f) {
    total += f.stats.retransmits;
    ++levels[int(f.key.fold)];
  });
  EXPECT_EQ(total, counted);
  EXPECT_EQ(levels[int(FoldLevel::none)], 80);
  EXPECT_EQ(levels[int(FoldLevel::peer)], 10);
  EXPECT_EQ(levels[int(FoldLevel::port)], 10);
  EXPECT_EQ(levels[int(FoldLevel::workload)], 1);
}

TEST(FlowTable, recovers_when_idle_flows_expire) {
  FlowTable t(FlowTableLimits{.max_series = 1000000, .max_flows = 100});
  for (int i = 0; i < 200; ++i) t.resolve(key(peer_n(i), static_cast<uint16_t>(i + 1)), 1'000);
  EXPECT_NE(t.stage(), FoldLevel::none);
  EXPECT_EQ(t.expire_idle(10'000, 5'000), t.size() ? t.size() : 0);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stage(), FoldLevel::none);
  EXPECT_EQ(t.resolve(key("10.9.9.9", 80), 20'000).key.fold, FoldLevel::none);
}

TEST(FlowTable, flows_with_live_connections_never_expire) {
  FlowTable t(FlowTableLimits{.max_series = 1000000, .max_flows = 100});
  Flow& f = t.resolve(key("10.0.0.1", 80), 1);
  f.stats.active = 1;
  t.resolve(key("10.0.0.2", 80), 1);
  EXPECT_EQ(t.expire_idle(1'000'000, 10), 1u);
  EXPECT_EQ(t.size(), 1u);
}

// The series the table projects, counted again from its flows and services: each flow's counters
// and connect results (one held for a flow with none yet), each service's histograms.
size_t counted_series(const FlowTable& t) {
  size_t series = 0;
  t.for_each([&](const Flow& f) {
    size_t results = 0;
    for (uint64_t n : f.stats.connects) results += n != 0;
    series += kFlowCounterSeries + std::max<size_t>(results, 1);
  });
  t.for_each_service([&](const Service& v) { series += service_series(v.key.direction); });
  return series;
}

TEST(SeriesBudget, six_thousand_flows_stay_within_the_default_budget_and_lose_no_count) {
  FlowTable t(FlowTableLimits{.churn_new_flows_per_minute = 0});  // the default budget, no breaker
  uint64_t connects = 0, retransmits = 0;
  for (int i = 0; i < 6000; ++i) {  // 3000 peers each way, 40 service ports, a few failures
    FlowKey k = key(peer_n(i / 2), uint16_t(8000 + i % 40),
                    i % 2 ? event::Direction::inbound : event::Direction::outbound);
    Flow& f = t.resolve(k, 1);
    t.count_connect(f, i % 13 == 0 && i % 2 == 0 ? ConnectResult::refused : ConnectResult::ok);
    if (i % 2 == 0) t.count_connect(f, ConnectResult::timeout);  // a second result: one more series
    connects += 1 + (i % 2 == 0);
    f.stats.retransmits += 3;
    retransmits += 3;
  }
  EXPECT_LE(t.series() + kAgentSeriesReserve, t.limits().max_series);
  EXPECT_EQ(t.series(), counted_series(t));
  EXPECT_GE(int(t.stage()), int(FoldLevel::peer));
  uint64_t seen_connects = 0, seen_retransmits = 0;
  t.for_each([&](const Flow& f) {
    for (uint64_t n : f.stats.connects) seen_connects += n;
    seen_retransmits += f.stats.retransmits;
  });
  EXPECT_EQ(seen_connects, connects);
  EXPECT_EQ(seen_retransmits, retransmits);
}

TEST(SeriesBudget, a_new_connect_result_past_the_budget_is_counted_on_the_catch_all) {
  FlowTable t(FlowTableLimits{.max_series = kMinSeriesBudget, .churn_new_flows_per_minute = 0});
  std::vector<Flow*> flows;
  for (int i = 0; i < 2000; ++i) {
    Flow& f = t.resolve(key(peer_n(i), 443), 1);
    t.count_connect(f, ConnectResult::ok);
    flows.push_back(&f);
  }
  for (Flow* f : flows) t.count_connect(*f, ConnectResult::reset);  // each a new series
  EXPECT_LE(t.series() + kAgentSeriesReserve, kMinSeriesBudget);
  EXPECT_EQ(t.series(), counted_series(t));
  uint64_t ok = 0, reset = 0;
  t.for_each([&](const Flow& f) {
    ok += f.stats.connects[int(ConnectResult::ok)];
    reset += f.stats.connects[int(ConnectResult::reset)];
  });
  EXPECT_EQ(ok, 2000u);
  EXPECT_EQ(reset, 2000u);
}

TEST(SeriesBudget, a_failure_past_the_budget_keeps_its_port_when_a_folded_flow_has_that_result) {
  FlowTable t(FlowTableLimits{.max_series = kMinSeriesBudget, .churn_new_flows_per_minute = 0});
  Flow& first = t.resolve(key(peer_n(0), 443), 1);
  t.count_connect(first, ConnectResult::ok);
  Flow* folded = nullptr;
  std::vector<Flow*> detailed;
  for (int i = 1; !folded; ++i) {  // peers of port 443 until one folds
    Flow& f = t.resolve(key(peer_n(i), 443), 1);
    if (f.key.fold == FoldLevel::peer) folded = &f;
    else detailed.push_back(&f);
  }
  t.count_connect(*folded, ConnectResult::refused);  // the folded flow has a refused series
  // More results on the detailed flows until one no longer fits: the flows' share is full.
  bool full = false;
  for (ConnectResult r : {ConnectResult::timeout, ConnectResult::reset, ConnectResult::error})
    for (size_t i = 0; i < detailed.size() && !full; ++i) {
      t.count_connect(*detailed[i], r);
      full = detailed[i]->stats.connects[int(r)] == 0;
    }
  ASSERT_TRUE(full);  // that result went to the catch-all, within its reserve
  EXPECT_LE(t.series(), t.flow_series_budget() + kCatchAllSeriesReserve);
  t.count_connect(first, ConnectResult::refused);  // a new series for `first`: past the budget
  EXPECT_EQ(first.stats.connects[int(ConnectResult::refused)], 0u);
  EXPECT_EQ(folded->stats.connects[int(ConnectResult::refused)], 2u);  // port 443 kept
}

TEST(SeriesBudget, expiry_gives_the_series_back_and_services_leave_with_their_last_flow) {
  FlowTable t(FlowTableLimits{});
  t.resolve(key("10.0.0.1", 80), 1).stats.rtt.observe_ns(1000);
  t.resolve(key("10.0.0.2", 80), 5).stats.rtt.observe_ns(2000);
  EXPECT_EQ(t.services(), 1u);
  EXPECT_EQ(t.series(), 2 * (kFlowCounterSeries + 1) + service_series(event::Direction::outbound));
  EXPECT_EQ(t.expire_idle(10, 7), 1u);  // the first flow goes; its RTT stays in the service
  EXPECT_EQ(t.services(), 1u);
  uint64_t rtt_samples = 0;
  t.for_each_service_stats([&](const FlowKey&, const ServiceStats& s) { rtt_samples += s.rtt.count; });
  EXPECT_EQ(rtt_samples, 2u);
  EXPECT_EQ(t.expire_idle(100, 7), 1u);
  EXPECT_EQ(t.services(), 0u);
  EXPECT_EQ(t.series(), 0u);
}

constexpr uint64_t kSecond = 1'000'000'000;

TEST(ChurnBreaker, folds_new_peers_while_new_flows_churn_and_gives_detail_back_when_it_calms) {
  FlowTable t(FlowTableLimits{.churn_new_flows_per_minute = 100});
  t.resolve(key("10.0.0.0", 80), kSecond);  // the first event: the breaker counts a minute on
  uint64_t now = 62 * kSecond;
  Flow& steady = t.resolve(key("10.0.0.1", 80), now);
  for (int i = 0; i < 99; ++i) t.resolve(key(peer_n(1000 + i), 80), now += kSecond / 10);  // 100 new keys
  EXPECT_FALSE(t.churn_breaker_tripped());
  EXPECT_EQ(t.resolve(key(peer_n(1100), 80), now).key.fold, FoldLevel::peer);  // the 101st new key in a minute
  EXPECT_TRUE(t.churn_breaker_tripped());
  EXPECT_EQ(t.churn_trips_total(), 1u);
  EXPECT_EQ(t.resolve(key(peer_n(1101), 80), now).key.fold, FoldLevel::peer);
  EXPECT_EQ(&t.resolve(key("10.0.0.1", 80), now), &steady);  // existing flows keep their detail
  // Peers already folded, coming back, are not new again: the breaker calms down.
  for (int s = 0; s < 70; ++s) {
    now += kSecond;
    t.resolve(key(peer_n(1100), 80), now);
    t.expire_idle(now, 3600 * kSecond);
  }
  EXPECT_FALSE(t.churn_breaker_tripped());
  EXPECT_EQ(t.resolve(key(peer_n(2000), 80), now).key.fold, FoldLevel::none);
}

TEST(ChurnBreaker, what_the_agent_finds_in_its_first_minute_is_not_churn) {
  FlowTable t(FlowTableLimits{.churn_new_flows_per_minute = 100});
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(t.resolve(key(peer_n(i), 80), kSecond + i).key.fold, FoldLevel::none);
  EXPECT_FALSE(t.churn_breaker_tripped());
  EXPECT_EQ(t.new_flow_keys_total(), 0u);
  // A minute on, new keys count (approximately: the memory of seen keys is a bitmap, so a few
  // new keys may pass for seen ones).
  for (int i = 0; i < 150; ++i) t.resolve(key(peer_n(5000 + i), 80), 70 * kSecond);
  EXPECT_TRUE(t.churn_breaker_tripped());
}

TEST(ChurnBreaker, resets_after_a_long_quiet_with_no_event_in_between) {
  FlowTable t(FlowTableLimits{.churn_new_flows_per_minute = 100});
  t.resolve(key("10.0.0.0", 80), kSecond);
  for (int i = 0; i < 150; ++i) t.resolve(key(peer_n(i), 80), 70 * kSecond);
  ASSERT_TRUE(t.churn_breaker_tripped());
  t.expire_idle(3600 * kSecond, 7200 * kSecond);  // an hour later, nothing happened since
  EXPECT_FALSE(t.churn_breaker_tripped());
  EXPECT_EQ(t.resolve(key(peer_n(5000), 80), 3600 * kSecond).key.fold, FoldLevel::none);
}

TEST(ChurnBreaker, stays_tripped_while_churn_saturates_its_memory_of_seen_keys) {
  // 200k new keys a minute fill the bitmaps, which then mistake most new keys for seen ones: the
  // count alone would read calm at the height of the churn.
  FlowTable t(FlowTableLimits{.churn_new_flows_per_minute = 100});
  t.resolve(key("10.0.0.0", 80), kSecond);
  uint64_t now = 62 * kSecond;
  for (int i = 0; i < 400'000; ++i) {
    FlowKey k = key(peer_n(i % 65536), uint16_t(1 + i / 65536));
    t.resolve(k, now += 300'000);  // 120 s of it
  }
  EXPECT_TRUE(t.churn_breaker_tripped());
  EXPECT_EQ(t.churn_trips_total(), 1u);
  for (int s = 0; s < 25; ++s) t.expire_idle(now += 10 * kSecond, 3600 * kSecond);  // the churn stops
  EXPECT_FALSE(t.churn_breaker_tripped());
}

TEST(ChurnBreaker, a_steady_rate_under_the_threshold_never_trips) {
  FlowTable t(FlowTableLimits{.churn_new_flows_per_minute = 100});
  uint64_t now = kSecond;
  for (int i = 0; i < 1000; ++i) {  // 90 new keys a minute, for 11 minutes
    now += 60 * kSecond / 90;
    EXPECT_EQ(t.resolve(key(peer_n(i), 80), now).key.fold, FoldLevel::none) << i;
    t.expire_idle(now, 120 * kSecond);
  }
  EXPECT_EQ(t.churn_trips_total(), 0u);
}

// A peer folded while the breaker is tripped is not new when it comes back (the breaker counts it
// once), but it is still new detail: it stays folded until the churn calms, or every health
// checker's second connection would get a flow of its own.
TEST(ChurnBreaker, a_folded_peer_coming_back_while_tripped_stays_folded) {
  FlowTable t(FlowTableLimits{.churn_new_flows_per_minute = 100});
  t.resolve(key("10.0.0.0", 80), kSecond);  // the first event: the breaker counts a minute on
  uint64_t now = 62 * kSecond;
  for (int i = 0; i < 101; ++i) t.resolve(key(peer_n(i), 80), now);
  ASSERT_TRUE(t.churn_breaker_tripped());
  const uint64_t new_keys = t.new_flow_keys_total();
  for (int i = 101; i < 200; ++i) {
    EXPECT_EQ(t.resolve(key(peer_n(i), 80), now).key.fold, FoldLevel::peer) << i;
    EXPECT_EQ(t.resolve(key(peer_n(i), 80), now += kSecond / 100).key.fold, FoldLevel::peer) << i << ", again";
  }
  EXPECT_EQ(t.new_flow_keys_total(), new_keys + 99);
  size_t detailed = 0;
  t.for_each([&](const Flow& f) { detailed += f.key.fold == FoldLevel::none; });
  EXPECT_EQ(detailed, 101u);  // 100 before it tripped, and the first event's
}

// A restart restores the flows it saved: they are not churn. Restoring more of them than the
// threshold neither trips the breaker nor folds any of them.
TEST(ChurnBreaker, restored_flows_are_not_new_and_keep_their_detail) {
  FlowTable before(FlowTableLimits{.churn_new_flows_per_minute = 0});
  for (int i = 0; i < 1000; ++i) before.count_connect(before.resolve(key(peer_n(i), 80), kSecond + i), ConnectResult::ok);
  FlowTable after(FlowTableLimits{.churn_new_flows_per_minute = 300});
  std::vector<Flow*> restored = after.restore(before.save());
  ASSERT_EQ(restored.size(), 1000u);
  size_t detailed = 0;
  for (const Flow* f : restored) detailed += f->key.fold == FoldLevel::none;
  EXPECT_EQ(detailed, 1000u);
  EXPECT_FALSE(after.churn_breaker_tripped());
  EXPECT_EQ(after.churn_trips_total(), 0u);
  // Afterwards new peers are counted as usual.
  after.resolve(key("10.0.0.0", 80), 2 * kSecond);
  for (int i = 0; i < 400; ++i) after.resolve(key(peer_n(2000 + i), 80), 70 * kSecond);
  EXPECT_TRUE(after.churn_breaker_tripped());
}

TEST(ConnectResult, maps_errno) {
  EXPECT_EQ(connect_result_of(ECONNREFUSED), ConnectResult::refused);
  EXPECT_EQ(connect_result_of(ETIMEDOUT), ConnectResult::timeout);
  EXPECT_EQ(connect_result_of(ECONNRESET), ConnectResult::reset);
  EXPECT_EQ(connect_result_of(0), ConnectResult::closed_before_established);
  EXPECT_EQ(connect_result_of(ECONNABORTED), ConnectResult::error);
  EXPECT_EQ(connect_result_name(ConnectResult::closed_before_established), "closed_before_established");
  EXPECT_EQ(connect_result_name(ConnectResult::refused), "refused");
}

}  // namespace
}  // namespace netwatch::aggregate
