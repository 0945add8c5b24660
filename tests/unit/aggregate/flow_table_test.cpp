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
  FlowTable t(100);
  for (int i = 0; i < 50; ++i) t.resolve(key(peer_n(i), 80), 1).stats.retransmits += 1;
  EXPECT_EQ(t.size(), 50u);
  EXPECT_EQ(t.stage(), FoldLevel::none);
  EXPECT_EQ(t.folded_total(), 0u);
}

TEST(FlowTable, same_key_resolves_to_the_same_flow) {
  FlowTable t(100);
  Flow& a = t.resolve(key("10.0.0.1", 80), 1);
  Flow& b = t.resolve(key("10.0.0.1", 80), 2);
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &t.resolve(key("10.0.0.1", 81), 3));
  EXPECT_NE(&a, &t.resolve(key("10.0.0.1", 80, event::Direction::inbound), 3));
}

TEST(FlowTable, budget_folds_peers_first_keeping_the_port) {
  FlowTable t(100);  // full detail up to 80 flows
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
  FlowTable t(100);
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
  FlowTable t(100);
  for (int i = 0; i < 200; ++i) t.resolve(key(peer_n(i), static_cast<uint16_t>(i + 1)), 1'000);
  EXPECT_NE(t.stage(), FoldLevel::none);
  EXPECT_EQ(t.expire_idle(10'000, 5'000), t.size() ? t.size() : 0);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.stage(), FoldLevel::none);
  EXPECT_EQ(t.resolve(key("10.9.9.9", 80), 20'000).key.fold, FoldLevel::none);
}

TEST(FlowTable, flows_with_live_connections_never_expire) {
  FlowTable t(100);
  Flow& f = t.resolve(key("10.0.0.1", 80), 1);
  f.stats.active = 1;
  t.resolve(key("10.0.0.2", 80), 1);
  EXPECT_EQ(t.expire_idle(1'000'000, 10), 1u);
  EXPECT_EQ(t.size(), 1u);
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
