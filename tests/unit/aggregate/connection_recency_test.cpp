// Recency in the connection table: capacity eviction takes exactly the least recently active
// connection, however large the table, and listings come least recently active first.
#include <gtest/gtest.h>

#include <list>
#include <random>

#include "aggregate/connection_table.h"
#include "aggregate/event_rules.h"
#include "tests/support/event_builder.h"

namespace netwatch::aggregate {
namespace {

using test::EventBuilder;

TEST(ConnectionRecency, capacity_eviction_follows_a_reference_lru_exactly) {
  constexpr size_t kCapacity = 500;
  FlowTable flows{FlowTableLimits{.max_series = 1000000, .max_flows = 100}};
  ConnectionTable table{ConnectionTableLimits{kCapacity, 16}};
  EventRules rules{flows, table, nullptr};
  std::list<uint64_t> lru;  // least recent first
  std::mt19937_64 rng(3);
  uint64_t next_cookie = 1;
  for (int i = 0; i < 20000; ++i) {
    if (lru.size() < kCapacity || rng() % 4 == 0) {  // a new connection; at capacity the LRU goes
      uint64_t cookie = next_cookie++;
      rules.apply(EventBuilder(event::EventType::connect, cookie));
      if (lru.size() == kCapacity) lru.pop_front();
      lru.push_back(cookie);
    } else {  // activity on a random live one
      auto it = std::next(lru.begin(), static_cast<long>(rng() % lru.size()));
      rules.apply(EventBuilder(event::EventType::rtt, *it).stats(0, uint32_t(i)));
      lru.splice(lru.end(), lru, it);
    }
  }
  std::vector<uint64_t> listed;
  table.for_each([&](const Connection& c) { listed.push_back(c.cookie); });
  EXPECT_EQ(listed, std::vector<uint64_t>(lru.begin(), lru.end()));
  EXPECT_EQ(table.evicted_full(), next_cookie - 1 - kCapacity);
}

TEST(ConnectionRecency, for_each_recent_lists_the_newest_least_recent_first) {
  FlowTable flows{FlowTableLimits{.max_series = 1000000, .max_flows = 100}};
  ConnectionTable table;
  EventRules rules{flows, table, nullptr};
  for (uint64_t cookie = 1; cookie <= 10; ++cookie) rules.apply(EventBuilder(event::EventType::connect, cookie));
  rules.apply(EventBuilder(event::EventType::rtt, 2).stats(0, 5));
  std::vector<uint64_t> listed;
  table.for_each_recent(3, [&](const Connection& c) { listed.push_back(c.cookie); });
  EXPECT_EQ(listed, (std::vector<uint64_t>{9, 10, 2}));
}

TEST(ConnectionRecency, idle_expiry_leaves_the_active_and_frees_slots_for_reuse) {
  FlowTable flows{FlowTableLimits{.max_series = 1000000, .max_flows = 100}};
  ConnectionTable table;
  EventRules rules{flows, table, nullptr};
  for (uint64_t cookie = 1; cookie <= 6; ++cookie)
    rules.apply(EventBuilder(event::EventType::connect, cookie).at(cookie % 2 ? 1'000'000'000 : 9'000'000'000));
  EXPECT_EQ(table.expire_idle(10'000'000'000, 5'000'000'000), 3u);
  for (uint64_t cookie = 7; cookie <= 9; ++cookie) rules.apply(EventBuilder(event::EventType::connect, cookie));
  std::vector<uint64_t> listed;
  table.for_each([&](const Connection& c) { listed.push_back(c.cookie); });
  EXPECT_EQ(listed, (std::vector<uint64_t>{2, 4, 6, 7, 8, 9}));
}

}  // namespace
}  // namespace netwatch::aggregate
