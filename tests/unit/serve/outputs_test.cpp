// What the agent serves: /metrics text and the JSON snapshot, from a real aggregation.
#include <gtest/gtest.h>

#include "aggregate/aggregator.h"
#include "serve/metrics_render.h"
#include "serve/snapshot_json.h"
#include "tests/support/event_builder.h"

namespace netwatch::serve {
namespace {

using test::EventBuilder;

std::shared_ptr<aggregate::Snapshot> sample_snapshot() {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{}, [](uint64_t cgroup) {
    return cgroup == 42 ? k8s::WorkloadLabels{"shop", "cart-7f9", "app"} : k8s::WorkloadLabels{};
  });
  agg.on_event(EventBuilder(event::EventType::connect, 1).cgroup(42).latency(3'000'000).at(10'000'000'000));
  agg.on_event(EventBuilder(event::EventType::rtt, 1).cgroup(42).stats(2, 40, 4000, 100, 250).at(11'000'000'000));
  agg.on_event(EventBuilder(event::EventType::connect_failed, 2).peer("2001:db8::1").error(ECONNREFUSED));
  return agg.snapshot(12'000'000'000, 1'700'000'000'000'000'000);
}

TEST(MetricsRender, flow_counters_carry_the_contract_labels) {
  std::string text = render_metrics_text(*sample_snapshot());
  EXPECT_NE(text.find("netwatch_tcp_retransmits_total{direction=\"outbound\",peer=\"10.0.0.2\",port=\"80\","
                      "namespace=\"shop\",pod=\"cart-7f9\",container=\"app\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("netwatch_tcp_segments_sent_total{direction=\"outbound\",peer=\"10.0.0.2\",port=\"80\","
                      "namespace=\"shop\",pod=\"cart-7f9\",container=\"app\"} 40"),
            std::string::npos);
  EXPECT_NE(text.find("netwatch_tcp_connects_total{direction=\"outbound\",peer=\"2001:db8::1\",port=\"80\","
                      "namespace=\"\",pod=\"\",container=\"\",result=\"refused\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE netwatch_tcp_rtt_seconds histogram"), std::string::npos);
  // 3 ms falls in the (2.5ms, 5ms] bucket.
  EXPECT_NE(text.find("netwatch_tcp_connect_duration_seconds_bucket{direction=\"outbound\","
                      "port=\"80\",namespace=\"shop\",pod=\"cart-7f9\",container=\"app\",le=\"0.005\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("netwatch_build_info{version="), std::string::npos);
  EXPECT_NE(text.find("netwatch_series_budget_stage 0"), std::string::npos);
}

TEST(MetricsRender, folded_flows_say_other) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{.max_flows = 10});
  for (uint64_t i = 1; i <= 30; ++i)
    agg.on_event(
        EventBuilder(event::EventType::connect, i).peer("10.2.0." + std::to_string(i)).ports(40000, uint16_t(i)));
  std::string text = render_metrics_text(*agg.snapshot(1, 1));
  EXPECT_NE(text.find("peer=\"other\",port=\"other\""), std::string::npos);
  EXPECT_NE(text.find("netwatch_series_budget_stage 2"), std::string::npos);
}

TEST(SnapshotJson, lists_connections_and_flows) {
  nlohmann::json j = snapshot_to_json(*sample_snapshot(), 100);
  ASSERT_EQ(j["connections"].size(), 1u);
  const auto& c = j["connections"][0];
  EXPECT_EQ(c["cookie"], 1);
  EXPECT_EQ(c["remote"], "10.0.0.2");
  EXPECT_EQ(c["remote_port"], 80);
  EXPECT_EQ(c["srtt_us"], 250);
  EXPECT_EQ(c["retransmits"], 2);
  EXPECT_EQ(c["state"], "ESTABLISHED");
  EXPECT_EQ(c["pod"], "cart-7f9");
  EXPECT_NEAR(c["age_s"].get<double>(), 2.003, 1e-9);  // snapshot at 12 s; SYN sent at 10 s - 3 ms latency
  EXPECT_EQ(j["flows"].size(), 2u);
  EXPECT_EQ(j["ts_ns"], 1'700'000'000'000'000'000ULL);
}

TEST(SnapshotJson, limit_keeps_the_most_recently_active) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{});
  for (uint64_t i = 1; i <= 5; ++i) agg.on_event(EventBuilder(event::EventType::connect, i).at(i * 1'000'000'000));
  nlohmann::json j = snapshot_to_json(*agg.snapshot(10'000'000'000, 0), 2);
  ASSERT_EQ(j["connections"].size(), 2u);
  EXPECT_EQ(j["connections"][0]["cookie"], 5);
  EXPECT_EQ(j["connections"][1]["cookie"], 4);
  EXPECT_TRUE(j["connections_truncated"].get<bool>());
  EXPECT_EQ(j["connections_total"], 5);
}

}  // namespace
}  // namespace netwatch::serve
