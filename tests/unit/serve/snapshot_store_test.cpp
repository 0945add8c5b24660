// The snapshot store: periodic snapshots list no connections; a handler asks for them and the
// reader thread answers with a snapshot of its own.
#include <gtest/gtest.h>

#include <future>

#include "aggregate/aggregator.h"
#include "serve/snapshot_store.h"
#include "serve/snapshot_json.h"
#include "tests/support/event_builder.h"

namespace netwatch::serve {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<aggregate::Snapshot> listing(size_t n) {
  auto s = std::make_shared<aggregate::Snapshot>();
  s->connections.resize(n);
  s->connections_total = 100;
  return s;
}

// Waits until the store has a request pending (the asking thread got there).
std::optional<size_t> wanted(const SnapshotStore& store) {
  for (int i = 0; i < 2000 && !store.connections_wanted(); ++i) std::this_thread::sleep_for(1ms);
  return store.connections_wanted();
}

TEST(SnapshotStore, a_request_is_answered_by_the_reader_thread) {
  SnapshotStore store;
  EXPECT_FALSE(store.connections_wanted());
  auto asked = std::async(std::launch::async, [&] { return store.request_connections(10, 5s); });
  ASSERT_EQ(wanted(store), 10u);
  store.answer_connections(listing(10), 10);
  auto answer = asked.get();
  ASSERT_NE(answer, nullptr);
  EXPECT_EQ(answer->connections.size(), 10u);
  EXPECT_FALSE(store.connections_wanted());
}

TEST(SnapshotStore, a_larger_request_waits_for_a_listing_as_large) {
  SnapshotStore store;
  auto asked = std::async(std::launch::async, [&] { return store.request_connections(50, 5s); });
  ASSERT_EQ(wanted(store), 50u);
  store.answer_connections(listing(10), 10);  // begun before the request: too short for it
  EXPECT_EQ(store.connections_wanted(), 50u);
  store.answer_connections(listing(50), 50);
  EXPECT_EQ(asked.get()->connections.size(), 50u);
}

TEST(SnapshotStore, unanswered_requests_time_out_and_close_answers_the_rest) {
  SnapshotStore store;
  EXPECT_EQ(store.request_connections(1, 10ms), nullptr);
  EXPECT_FALSE(store.connections_wanted());
  auto asked = std::async(std::launch::async, [&] { return store.request_connections(1, 60s); });
  ASSERT_TRUE(wanted(store));
  store.close();
  EXPECT_EQ(asked.get(), nullptr);
  EXPECT_EQ(store.request_connections(1, 60s), nullptr);  // at once, not after a minute
}

TEST(SnapshotStore, tracked_connections_is_the_total_not_the_listed) {
  aggregate::Snapshot s;
  s.connections_total = 7;
  EXPECT_EQ(s.tracked_connections(), 7u);
  s.connections.resize(9);  // built by hand, without the total
  EXPECT_EQ(s.tracked_connections(), 9u);
}

TEST(SnapshotStore, an_aggregator_snapshot_lists_the_most_recent_and_counts_all) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{});
  for (uint64_t i = 1; i <= 5; ++i)
    agg.on_event(test::EventBuilder(event::EventType::connect, i).at(i * 1'000'000'000));
  auto s = agg.snapshot(10'000'000'000, 0, 2);
  ASSERT_EQ(s->connections.size(), 2u);
  EXPECT_EQ(s->connections[0].connection.cookie, 4u);
  EXPECT_EQ(s->connections[1].connection.cookie, 5u);
  nlohmann::json j = snapshot_to_json(*s, 100);
  EXPECT_EQ(j["connections_total"], 5);
  EXPECT_TRUE(j["connections_truncated"].get<bool>());
  EXPECT_EQ(agg.snapshot(10'000'000'000, 0, 0)->connections.size(), 0u);
}

}  // namespace
}  // namespace netwatch::serve
