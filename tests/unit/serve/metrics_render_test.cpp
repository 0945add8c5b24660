// /metrics text: the flow families are written straight to text (the scrape's hot path); they must
// stay byte for byte what prometheus-cpp's TextSerializer writes for the same families.
#include "serve/metrics_render.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "aggregate/aggregator.h"
#include "tests/support/event_builder.h"

namespace netwatch {
namespace {

using test::EventBuilder;

std::string serialized_by_prometheus_cpp(const Snapshot& s) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, render_families(s));
  return out.str();
}

TEST(MetricsText, is_what_prometheus_cpp_writes_for_every_kind_of_flow) {
  // Workloads whose labels need escaping, folded flows at every level, every connect result,
  // histograms with samples beyond the last bound, IPv6 peers, counters past 2^53.
  Aggregator agg(AggregatorConfig{.max_flows = 12}, [](uint64_t cgroup) {
    return cgroup % 2 ? WorkloadLabels{"shop", "cart \"7\" \\ b", "app"} : WorkloadLabels{};
  });
  uint64_t cookie = 1;
  for (int i = 0; i < 40; ++i, ++cookie) {
    Direction dir = i % 3 == 0 ? Direction::inbound : i % 3 == 1 ? Direction::outbound : Direction::unknown;
    std::string peer = i % 4 == 0 ? "2001:db8::" + std::to_string(i) : "10.9.0." + std::to_string(i);
    agg.on_event(EventBuilder(dir == Direction::inbound ? EventType::accept : EventType::connect, cookie, dir)
                     .peer(peer)
                     .ports(40000, uint16_t(80 + i % 7))
                     .cgroup(uint64_t(i))
                     .latency(uint64_t(i) * 7'777'777));
    agg.on_event(
        EventBuilder(EventType::rtt, cookie, dir)
            .peer(peer)
            .ports(40000, uint16_t(80 + i % 7))
            .cgroup(uint64_t(i))
            .stats(uint32_t(i), 1000 + uint32_t(i), (1ULL << 54) + 12345 * uint64_t(i), 333, uint32_t(i) * 997'003));
    agg.on_event(
        EventBuilder(EventType::connect_failed, 1000 + cookie).peer(peer).error(i % 2 ? ECONNREFUSED : ETIMEDOUT));
  }
  auto snapshot = agg.snapshot(1, 1);
  ASSERT_GE(int(snapshot->health.stage), 2);
  EXPECT_EQ(render_metrics_text(*snapshot), serialized_by_prometheus_cpp(*snapshot));
}

TEST(MetricsText, an_empty_snapshot_is_what_prometheus_cpp_writes) {
  Snapshot empty;
  EXPECT_EQ(render_metrics_text(empty), serialized_by_prometheus_cpp(empty));
}

TEST(MetricsText, a_newline_in_a_label_value_is_escaped) {
  Aggregator agg(AggregatorConfig{}, [](uint64_t) { return WorkloadLabels{"ns", "pod\nname", "c"}; });
  agg.on_event(EventBuilder(EventType::connect, 1).cgroup(5));
  std::string text = render_metrics_text(*agg.snapshot(1, 1));
  EXPECT_NE(text.find("pod=\"pod\\nname\""), std::string::npos);
}

}  // namespace
}  // namespace netwatch
