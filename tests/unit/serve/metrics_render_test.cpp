// /metrics text: the flow families are written straight to text (the scrape's hot path); they must
// stay byte for byte what prometheus-cpp's TextSerializer writes for the same families.
#include "serve/metrics_render.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>
#include <sstream>

#include "aggregate/aggregator.h"
#include "tests/support/event_builder.h"

namespace netwatch::serve {
namespace {

using test::EventBuilder;

// The oracle: the flow families built as prometheus-cpp MetricFamily values (the names, help and
// labels of the README's contract), then the agent's health families, serialized by prometheus-cpp.
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric oracle_value(std::vector<ClientMetric::Label> labels, double v, MetricType type) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) m.counter.value = v;
  else m.gauge.value = v;
  return m;
}

ClientMetric oracle_histogram(std::vector<ClientMetric::Label> labels, const aggregate::LatencyHistogram& h) {
  ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = static_cast<double>(h.sum_ns) / 1e9;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < aggregate::kLatencyBucketsSeconds.size(); ++i) {
    cumulative += h.buckets[i];
    m.histogram.bucket.push_back({cumulative, aggregate::kLatencyBucketsSeconds[i]});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  return m;
}

std::vector<MetricFamily> oracle_flow_families(const aggregate::Snapshot& s) {
  MetricFamily connects{"netwatch_tcp_connects_total",
                        "TCP connections by handshake result (inbound: accepted connections)", MetricType::Counter, {}};
  MetricFamily connect_duration{"netwatch_tcp_connect_duration_seconds",
                                "Outbound connect latency, SYN sent to established", MetricType::Histogram, {}};
  MetricFamily retransmits{"netwatch_tcp_retransmits_total", "Retransmitted TCP segments", MetricType::Counter, {}};
  MetricFamily segments{"netwatch_tcp_segments_sent_total", "TCP segments sent, retransmissions included",
                        MetricType::Counter, {}};
  MetricFamily rtt{"netwatch_tcp_rtt_seconds", "Smoothed RTT, sampled per connection", MetricType::Histogram, {}};
  MetricFamily active{"netwatch_tcp_active_connections", "Live tracked connections", MetricType::Gauge, {}};
  MetricFamily bytes_sent{"netwatch_tcp_bytes_sent_total", "Payload bytes sent, retransmissions included",
                          MetricType::Counter, {}};
  MetricFamily bytes_received{"netwatch_tcp_bytes_received_total", "Payload bytes received", MetricType::Counter, {}};
  for (const aggregate::FlowView& f : s.flows) {
    bool fold_workload = f.key.fold >= aggregate::FoldLevel::workload;
    std::vector<ClientMetric::Label> labels = {{"direction", std::string(event::direction_name(f.key.direction))},
                                               {"peer", f.peer_label()},
                                               {"port", f.port_label()},
                                               {"namespace", fold_workload ? "other" : f.workload.namespace_name},
                                               {"pod", fold_workload ? "other" : f.workload.pod},
                                               {"container", fold_workload ? "other" : f.workload.container}};
    const aggregate::FlowStats& st = f.stats;
    for (int r = 0; r < aggregate::kConnectResultCount; ++r) {
      if (!st.connects[r]) continue;  // absent until it happens, like any labelled counter
      auto l = labels;
      l.push_back({"result", std::string(aggregate::connect_result_name(static_cast<aggregate::ConnectResult>(r)))});
      connects.metric.push_back(oracle_value(std::move(l), double(st.connects[r]), MetricType::Counter));
    }
    retransmits.metric.push_back(oracle_value(labels, double(st.retransmits), MetricType::Counter));
    segments.metric.push_back(oracle_value(labels, double(st.segments_sent), MetricType::Counter));
    active.metric.push_back(oracle_value(labels, double(st.active), MetricType::Gauge));
    bytes_sent.metric.push_back(oracle_value(labels, double(st.bytes_sent), MetricType::Counter));
    bytes_received.metric.push_back(oracle_value(labels, double(st.bytes_received), MetricType::Counter));
  }
  for (const aggregate::ServiceView& v : s.services) {  // the histograms: per service, without the peer
    bool fold_workload = v.key.fold >= aggregate::FoldLevel::workload;
    std::vector<ClientMetric::Label> labels = {{"direction", std::string(event::direction_name(v.key.direction))},
                                               {"port", v.port_label()},
                                               {"namespace", fold_workload ? "other" : v.workload.namespace_name},
                                               {"pod", fold_workload ? "other" : v.workload.pod},
                                               {"container", fold_workload ? "other" : v.workload.container}};
    if (v.key.direction != event::Direction::inbound)
      connect_duration.metric.push_back(oracle_histogram(labels, v.stats.connect_latency));
    rtt.metric.push_back(oracle_histogram(labels, v.stats.rtt));
  }
  return {connects, connect_duration, retransmits, segments, rtt, active, bytes_sent, bytes_received};
}

std::string serialized_by_prometheus_cpp(const aggregate::Snapshot& s) {
  std::vector<MetricFamily> families = oracle_flow_families(s);
  for (MetricFamily& f : render_health_families(s, flow_family_series(s))) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

TEST(MetricsText, is_what_prometheus_cpp_writes_for_every_kind_of_flow) {
  // Workloads whose labels need escaping, folded flows at every level, every connect result,
  // histograms with samples beyond the last bound, IPv6 peers, counters past 2^53.
  aggregate::Aggregator agg(aggregate::AggregatorConfig{.max_flows = 12}, [](uint64_t cgroup) {
    return cgroup % 2 ? k8s::WorkloadLabels{"shop", "cart \"7\" \\ b", "app"} : k8s::WorkloadLabels{};
  });
  uint64_t cookie = 1;
  for (int i = 0; i < 40; ++i, ++cookie) {
    event::Direction dir = i % 3 == 0   ? event::Direction::inbound
                           : i % 3 == 1 ? event::Direction::outbound
                                        : event::Direction::unknown;
    std::string peer = i % 4 == 0 ? "2001:db8::" + std::to_string(i) : "10.9.0." + std::to_string(i);
    agg.on_event(EventBuilder(dir == event::Direction::inbound ? event::EventType::accept : event::EventType::connect,
                              cookie, dir)
                     .peer(peer)
                     .ports(40000, uint16_t(80 + i % 7))
                     .cgroup(uint64_t(i))
                     .latency(uint64_t(i) * 7'777'777));
    agg.on_event(
        EventBuilder(event::EventType::rtt, cookie, dir)
            .peer(peer)
            .ports(40000, uint16_t(80 + i % 7))
            .cgroup(uint64_t(i))
            .stats(uint32_t(i), 1000 + uint32_t(i), (1ULL << 54) + 12345 * uint64_t(i), 333, uint32_t(i) * 997'003));
    agg.on_event(EventBuilder(event::EventType::connect_failed, 1000 + cookie)
                     .peer(peer)
                     .error(i % 2 ? ECONNREFUSED : ETIMEDOUT));
  }
  auto snapshot = agg.snapshot(1, 1);
  ASSERT_GE(int(snapshot->health.stage), 2);
  EXPECT_EQ(render_metrics_text(*snapshot), serialized_by_prometheus_cpp(*snapshot));
}

// Sample lines of a text exposition: its series.
size_t sample_lines(const std::string& text) {
  size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += !line.empty() && line[0] != '#';
  return n;
}

double sample_value(const std::string& text, const std::string& name) {
  size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

TEST(MetricsText, netwatch_series_counts_every_series_of_the_exposition) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{}, [](uint64_t cgroup) {
    return k8s::WorkloadLabels{"ns", "pod-" + std::to_string(cgroup % 5), "c"};
  });
  for (uint64_t i = 1; i <= 300; ++i) {
    event::Direction dir = i % 2 ? event::Direction::inbound : event::Direction::outbound;
    agg.on_event(EventBuilder(dir == event::Direction::inbound ? event::EventType::accept : event::EventType::connect,
                              i, dir)
                     .peer("10.3." + std::to_string(i / 200) + "." + std::to_string(i % 200))
                     .ports(40000, uint16_t(80 + i % 9))
                     .cgroup(i)
                     .latency(i * 1000));
    if (i % 7 == 0) agg.on_event(EventBuilder(event::EventType::connect_failed, 10000 + i).peer("10.4.0.1").error(ECONNREFUSED));
  }
  // A connection first seen mid-life (open before the agent): its flow has no connect result.
  agg.on_event(EventBuilder(event::EventType::rtt, 20000).peer("10.6.0.1").ports(40000, 443).stats(0, 5, 1, 1, 300));
  auto snapshot = agg.snapshot(1, 1);
  std::vector<MetricFamily> http = http_metric_families(HttpStats{}, HttpLimits{});
  std::string text = render_metrics_text(*snapshot, http);
  EXPECT_EQ(sample_value(text, "netwatch_series"), double(sample_lines(text)));
  // The flow table's projection is what the flow families wrote, plus the connect result it holds
  // for each flow that has none yet.
  size_t without_result = 0;
  for (const aggregate::FlowView& f : snapshot->flows)
    without_result += std::all_of(f.stats.connects.begin(), f.stats.connects.end(), [](uint64_t n) { return n == 0; });
  EXPECT_GT(without_result, 0u);
  EXPECT_EQ(agg.flows().series(), flow_family_series(*snapshot) + without_result);
}

TEST(MetricsText, the_agents_own_series_fit_their_reserve) {
  // The most the health and HTTP families can hold: pod labels on, every program listed.
  aggregate::Snapshot s;
  s.health.pods = k8s::PodResolverStats{};
  s.health.flow_cap = 10;
  for (int i = 0; i < 32; ++i) s.health.programs.push_back({"program_" + std::to_string(i), 0, 0, 0});
  std::string text = render_metrics_text(s, http_metric_families(HttpStats{}, HttpLimits{}));
  EXPECT_LE(sample_lines(text), aggregate::kAgentSeriesReserve);
}

TEST(MetricsText, histograms_are_per_service_and_sum_the_services_flows) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{});
  for (uint64_t i = 1; i <= 10; ++i) {  // ten peers of one service, port 443
    agg.on_event(EventBuilder(event::EventType::connect, i).peer("10.5.0." + std::to_string(i)).ports(40000, 443)
                     .latency(i * 1'000'000));
    agg.on_event(EventBuilder(event::EventType::rtt, i).peer("10.5.0." + std::to_string(i)).ports(40000, 443)
                     .stats(0, 1, 1, 1, uint32_t(i) * 100));
  }
  auto snapshot = agg.snapshot(1, 1);
  ASSERT_EQ(snapshot->flows.size(), 10u);
  ASSERT_EQ(snapshot->services.size(), 1u);
  EXPECT_EQ(snapshot->services[0].stats.connect_latency.count, 10u);
  EXPECT_EQ(snapshot->services[0].stats.rtt.count, 10u);
  std::string text = render_metrics_text(*snapshot);
  EXPECT_NE(text.find("netwatch_tcp_connect_duration_seconds_count{direction=\"outbound\",port=\"443\",namespace=\"\","
                      "pod=\"\",container=\"\"} 10\n"),
            std::string::npos);
  EXPECT_EQ(text.find("netwatch_tcp_rtt_seconds_count{direction=\"outbound\",peer="), std::string::npos);
}

TEST(MetricsText, an_empty_snapshot_is_what_prometheus_cpp_writes) {
  aggregate::Snapshot empty;
  EXPECT_EQ(render_metrics_text(empty), serialized_by_prometheus_cpp(empty));
}

TEST(MetricsText, a_newline_in_a_label_value_is_escaped) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{}, [](uint64_t) {
    return k8s::WorkloadLabels{"ns", "pod\nname", "c"};
  });
  agg.on_event(EventBuilder(event::EventType::connect, 1).cgroup(5));
  std::string text = render_metrics_text(*agg.snapshot(1, 1));
  EXPECT_NE(text.find("pod=\"pod\\nname\""), std::string::npos);
}

}  // namespace
}  // namespace netwatch::serve
