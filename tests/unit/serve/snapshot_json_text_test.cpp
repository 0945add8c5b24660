// /api/v1/connections is written one connection at a time; it must be the document
// snapshot_to_json() builds, byte for byte as it dumps.
#include <gtest/gtest.h>

#include "aggregate/aggregator.h"
#include "serve/snapshot_json.h"
#include "tests/support/event_builder.h"

namespace netwatch::serve {
namespace {

using test::EventBuilder;

std::string dumped(const aggregate::Snapshot& s, size_t limit) {
  return snapshot_to_json(s, limit).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TEST(SnapshotJsonText, is_the_document_snapshot_to_json_dumps) {
  // A pod name with invalid UTF-8: replaced the same way in both.
  aggregate::Aggregator agg(aggregate::AggregatorConfig{}, [](uint64_t cgroup) {
    return cgroup == 2 ? k8s::WorkloadLabels{"ns", "pod-\xff\xfe", "c"} : k8s::WorkloadLabels{};
  });
  for (uint64_t i = 1; i <= 20; ++i)
    agg.on_event(
        EventBuilder(event::EventType::connect, i).cgroup(i % 3).peer("10.1.0." + std::to_string(i)).at(i * 1000));
  agg.on_event(EventBuilder(event::EventType::rtt, 3).stats(1, 50, 7000, 9, 250).at(50'000));
  auto s = agg.snapshot(100'000, 1'700'000'000'000'000'000);
  for (size_t limit : {size_t{1}, size_t{5}, size_t{20}, size_t{100}})
    EXPECT_EQ(snapshot_to_json_text(*s, limit), dumped(*s, limit));
  aggregate::Snapshot empty;
  EXPECT_EQ(snapshot_to_json_text(empty, 10), dumped(empty, 10));
}

}  // namespace
}  // namespace netwatch::serve
