// Every cap of the agent's userspace tables (README "Bounded by design"), driven past: what the
// policy keeps, what it evicts, folds or forgets, and the /metrics line that says so. The pod
// resolver's caps are driven past in pod_resolver_test.cpp, the ?limit= bound in flags_test.cpp
// and snapshot_store_test.cpp; the kernel-side caps in tests/e2e/bounds_test.cpp.
#include <gtest/gtest.h>

#include <set>

#include "aggregate/aggregator.h"
#include "aggregate/connection_table.h"
#include "aggregate/event_rules.h"
#include "aggregate/workload_registry.h"
#include "serve/metrics_render.h"
#include "tests/support/event_builder.h"

namespace netwatch::serve {
namespace {

using test::EventBuilder;

// The line of /metrics text that starts with `series` (name and labels as rendered).
std::string metric_line(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

TEST(Bounds, connection_table_past_max_connections_keeps_the_most_recent_and_counts_evictions) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{.max_connections = 4});
  for (uint64_t cookie = 1; cookie <= 10; ++cookie)
    agg.on_event(EventBuilder(event::EventType::connect, cookie).at(cookie * 1'000'000));
  auto snapshot = agg.snapshot(20'000'000, 1);
  std::set<uint64_t> kept;
  for (const auto& c : snapshot->connections) kept.insert(c.connection.cookie);
  EXPECT_EQ(kept, (std::set<uint64_t>{7, 8, 9, 10}));
  std::string text = render_metrics_text(*snapshot);
  EXPECT_EQ(metric_line(text, "netwatch_tracked_connections"), "netwatch_tracked_connections 4") << text;
  EXPECT_EQ(metric_line(text, "netwatch_tracked_connections_limit"), "netwatch_tracked_connections_limit 4");
  EXPECT_EQ(metric_line(text, "netwatch_connection_evictions_total{reason=\"capacity\"}"),
            "netwatch_connection_evictions_total{reason=\"capacity\"} 6");
  // Evicted connections leave their flow: active is what the table holds, connects what happened.
  EXPECT_NE(text.find("netwatch_tcp_active_connections{direction=\"outbound\",peer=\"10.0.0.2\",port=\"80\","
                      "namespace=\"\",pod=\"\",container=\"\"} 4"),
            std::string::npos);
  EXPECT_NE(text.find("result=\"ok\"} 10"), std::string::npos);
}

TEST(Bounds, recently_closed_past_its_cap_forgets_the_oldest_cookie_first) {
  aggregate::FlowTable flows{aggregate::FlowTableLimits{.max_series = 1000000, .max_flows = 100}};
  aggregate::ConnectionTable table{aggregate::ConnectionTableLimits{.max_connections = 100, .recently_closed = 4}};
  aggregate::EventRules rules{flows, table, nullptr};
  for (uint64_t cookie = 1; cookie <= 5; ++cookie) {
    rules.apply(EventBuilder(event::EventType::connect, cookie));
    rules.apply(EventBuilder(event::EventType::close, cookie).stats(0, 10));
  }
  // 2..5 are remembered: their late events are ignored.
  for (uint64_t cookie = 2; cookie <= 5; ++cookie) rules.apply(EventBuilder(event::EventType::rtt, cookie).stats(0, 9));
  EXPECT_EQ(table.size(), 0u);
  // 1 was pushed out by 5: a late event of it is taken for a connection first seen mid-life.
  rules.apply(EventBuilder(event::EventType::rtt, 1).stats(0, 9));
  EXPECT_EQ(table.size(), 1u);
}

TEST(Bounds, workload_registry_past_its_cap_folds_new_workloads_into_other) {
  aggregate::WorkloadRegistry registry(2);
  uint32_t a = registry.intern({"ns", "a", "c"}), b = registry.intern({"ns", "b", "c"});
  EXPECT_NE(a, aggregate::WorkloadRegistry::kOther);
  EXPECT_NE(b, aggregate::WorkloadRegistry::kOther);
  EXPECT_EQ(registry.intern({"ns", "c", "c"}), aggregate::WorkloadRegistry::kOther);
  EXPECT_EQ(registry.intern({"ns", "d", "c"}), aggregate::WorkloadRegistry::kOther);
  EXPECT_EQ(registry.intern({"ns", "a", "c"}), a);          // existing workloads keep their labels
  EXPECT_EQ(registry.intern({}), aggregate::WorkloadRegistry::kHost);  // host processes never count
  EXPECT_EQ(registry.overflows(), 2u);
  EXPECT_EQ(registry.size(), 4u);  // host, other, a, b: no growth past the cap
}

TEST(Bounds, workloads_past_max_workloads_show_as_other_in_metrics) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{.max_workloads = 2}, [](uint64_t cgroup) {
    return k8s::WorkloadLabels{"shop", "pod-" + std::to_string(cgroup), "app"};
  });
  for (uint64_t cookie = 1; cookie <= 5; ++cookie)
    agg.on_event(EventBuilder(event::EventType::connect, cookie).cgroup(cookie));
  std::string text = render_metrics_text(*agg.snapshot(1, 1));
  EXPECT_EQ(metric_line(text, "netwatch_workload_overflows_total"), "netwatch_workload_overflows_total 3") << text;
  EXPECT_NE(text.find("namespace=\"other\",pod=\"other\",container=\"other\",result=\"ok\"} 3"), std::string::npos);
  EXPECT_NE(text.find("pod=\"pod-1\""), std::string::npos);
  EXPECT_EQ(text.find("pod=\"pod-3\""), std::string::npos);
}

TEST(Bounds, flows_past_the_series_budget_fold_within_it_and_count_what_folded) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{.max_flows = 10});
  for (uint64_t i = 1; i <= 200; ++i)
    agg.on_event(EventBuilder(event::EventType::connect, i)
                     .peer("10.3." + std::to_string(i / 250) + "." + std::to_string(i % 250))
                     .ports(40000, uint16_t(1000 + i)));
  auto snapshot = agg.snapshot(1, 1);
  EXPECT_EQ(snapshot->flows.size(), 10u);  // 8 in full, 1 with the peer folded, 1 with peer and port
  uint64_t connects = 0;
  for (const auto& f : snapshot->flows) connects += f.stats.connects[int(aggregate::ConnectResult::ok)];
  EXPECT_EQ(connects, 200u);  // folded, never lost
  std::string text = render_metrics_text(*snapshot);
  EXPECT_EQ(metric_line(text, "netwatch_series_budget_stage"), "netwatch_series_budget_stage 2") << text;
  EXPECT_EQ(metric_line(text, "netwatch_series_budget_folded_total"),
            "netwatch_series_budget_folded_total " + std::to_string(200 - 8));
  EXPECT_EQ(metric_line(text, "netwatch_flows"), "netwatch_flows " + std::to_string(snapshot->flows.size()));
}

}  // namespace
}  // namespace netwatch::serve
