// /metrics as protobuf: decoded, it must hold exactly the series of the text exposition of the same
// snapshot (names, help, types, labels, values), and the latency histograms' native buckets must be
// the histograms' own.
#include "serve/metrics_protobuf.h"

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>

#include "aggregate/aggregator.h"
#include "prometheus_client/metrics.pb.h"
#include "serve/metrics_render.h"
#include "tests/support/event_builder.h"

namespace netwatch::serve {
namespace {

namespace pb = io::prometheus::client;
using test::EventBuilder;

// A series: its name, its label block as the text writes it without le, and le (NaN: none).
struct PbSeriesKey {
  std::string name, labels;
  std::string le;
  auto operator<=>(const PbSeriesKey&) const = default;
};
struct PbExposition {
  std::map<std::string, std::string> help, type;
  std::map<PbSeriesKey, double> series;
};

std::string pb_le(double bound) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", bound);
  return buf;
}

std::string pb_unescape_help(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out += s[i + 1] == 'n' ? '\n' : s[i + 1];
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

PbExposition pb_parse_text(const std::string& text) {
  PbExposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      size_t sp = line.find(' ', 7);
      (line[2] == 'H' ? e.help : e.type)[line.substr(7, sp - 7)] = pb_unescape_help(line.substr(sp + 1));
      continue;
    }
    size_t value_at = line.rfind(' ');
    std::string id = line.substr(0, value_at);
    PbSeriesKey key;
    size_t brace = id.find('{');
    key.name = id.substr(0, brace);
    if (brace != std::string::npos) key.labels = id.substr(brace + 1, id.size() - brace - 2);
    size_t le = key.labels.rfind("le=\"");
    if (le != std::string::npos && (le == 0 || key.labels[le - 1] == ',')) {
      key.le = pb_le(std::strtod(key.labels.c_str() + le + 4, nullptr));
      key.labels.erase(le == 0 ? 0 : le - 1);
    }
    e.series[key] = std::strtod(line.c_str() + value_at + 1, nullptr);
  }
  return e;
}

std::string pb_label_block(const pb::Metric& m) {
  std::string out;
  for (const pb::LabelPair& l : m.label()) {
    if (!out.empty()) out += ',';
    out += l.name() + "=\"";
    for (char c : l.value()) {
      if (c == '\n') out += "\\n";
      else {
        if (c == '\\' || c == '"') out += '\\';
        out += c;
      }
    }
    out += '"';
  }
  return out;
}

std::vector<pb::MetricFamily> pb_decode(const std::string& bytes) {
  std::vector<pb::MetricFamily> families;
  google::protobuf::io::ArrayInputStream in(bytes.data(), static_cast<int>(bytes.size()));
  for (;;) {
    pb::MetricFamily f;
    bool clean_eof = false;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&f, &in, &clean_eof)) {
      EXPECT_TRUE(clean_eof) << "a truncated or malformed message after " << families.size() << " families";
      return families;
    }
    families.push_back(std::move(f));
  }
}

// The decoded families as the text exposition would show them (classic histogram series).
PbExposition pb_as_text_series(const std::vector<pb::MetricFamily>& families) {
  static const char* kTypes[] = {"counter", "gauge", "summary", "untyped", "histogram"};
  PbExposition e;
  for (const pb::MetricFamily& f : families) {
    EXPECT_FALSE(e.help.count(f.name())) << f.name() << " twice";
    e.help[f.name()] = f.help();
    e.type[f.name()] = kTypes[f.type()];
    for (const pb::Metric& m : f.metric()) {
      std::string labels = pb_label_block(m);
      switch (f.type()) {
        case pb::COUNTER: e.series[{f.name(), labels, ""}] = m.counter().value(); break;
        case pb::GAUGE: e.series[{f.name(), labels, ""}] = m.gauge().value(); break;
        case pb::HISTOGRAM: {
          const pb::Histogram& h = m.histogram();
          e.series[{f.name() + "_count", labels, ""}] = static_cast<double>(h.sample_count());
          e.series[{f.name() + "_sum", labels, ""}] = h.sample_sum();
          for (const pb::Bucket& b : h.bucket())
            e.series[{f.name() + "_bucket", labels, pb_le(b.upper_bound())}] = static_cast<double>(b.cumulative_count());
          e.series[{f.name() + "_bucket", labels, pb_le(INFINITY)}] = static_cast<double>(h.sample_count());
          break;
        }
        default: ADD_FAILURE() << f.name() << ": unexpected type " << f.type();
      }
    }
  }
  return e;
}

// Native buckets decoded from spans and deltas: index -> count.
std::map<int, uint64_t> pb_native_buckets(const pb::Histogram& h) {
  std::map<int, uint64_t> out;
  int index = 0;
  int64_t count = 0;
  int delta = 0;
  for (int s = 0; s < h.positive_span_size(); ++s) {
    index += h.positive_span(s).offset();
    for (uint32_t k = 0; k < h.positive_span(s).length(); ++k, ++index) {
      count += h.positive_delta(delta++);
      out[index] = static_cast<uint64_t>(count);
    }
  }
  EXPECT_EQ(delta, h.positive_delta_size());
  return out;
}

std::map<int, uint64_t> pb_native_buckets(const aggregate::LatencyHistogram& h) {
  std::map<int, uint64_t> out;
  for (size_t k = 0; k < h.native_buckets.size(); ++k)
    if (h.native_buckets[k]) out[h.native_first + static_cast<int>(k)] = h.native_buckets[k];
  return out;
}

std::shared_ptr<const aggregate::Snapshot> pb_snapshot() {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{.max_flows = 12}, [](uint64_t cgroup) {
    return cgroup % 2 ? k8s::WorkloadLabels{"shop", "cart \"7\" \\ b", "app"} : k8s::WorkloadLabels{};
  });
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> rtt_us(6.0, 2.0);
  for (uint64_t cookie = 1; cookie <= 40; ++cookie) {
    event::Direction dir = cookie % 3 == 0 ? event::Direction::inbound : event::Direction::outbound;
    std::string peer = cookie % 4 == 0 ? "2001:db8::" + std::to_string(cookie) : "10.9.0." + std::to_string(cookie);
    uint16_t port = uint16_t(80 + cookie % 7);
    agg.on_event(EventBuilder(dir == event::Direction::inbound ? event::EventType::accept : event::EventType::connect,
                              cookie, dir)
                     .peer(peer)
                     .ports(40000, port)
                     .cgroup(cookie)
                     .latency(cookie % 5 == 1 ? 500 : cookie * 7'777'777));  // 500 ns: the zero bucket
    for (int n = 0; n < 50; ++n)
      agg.on_event(EventBuilder(event::EventType::rtt, cookie, dir)
                       .peer(peer)
                       .ports(40000, port)
                       .cgroup(cookie)
                       .stats(uint32_t(n / 10), 1000 + uint32_t(n), (1ULL << 54) + 12345 * cookie, 333,
                              uint32_t(rtt_us(rng)) + 1));  // srtt from 1 us to seconds
    agg.on_event(EventBuilder(event::EventType::connect_failed, 1000 + cookie)
                     .peer(peer)
                     .error(cookie % 2 ? ECONNREFUSED : ETIMEDOUT));
  }
  return agg.snapshot(1, 1);
}

TEST(MetricsProtobuf, holds_every_series_of_the_text_exposition) {
  auto snapshot = pb_snapshot();
  HttpStats stats{.connections_open = 3, .refused_overall = 1, .timed_out_idle = 7, .rejected_header = 2};
  auto http = http_metric_families(stats, HttpLimits{});
  PbExposition text = pb_parse_text(render_metrics_text(*snapshot, http));
  PbExposition proto = pb_as_text_series(pb_decode(render_metrics_protobuf(*snapshot, http)));
  ASSERT_GT(text.series.size(), 400u);
  EXPECT_EQ(proto.help, text.help);
  EXPECT_EQ(proto.type, text.type);
  ASSERT_EQ(proto.series.size(), text.series.size());
  for (const auto& [key, value] : text.series) {
    auto it = proto.series.find(key);
    ASSERT_NE(it, proto.series.end()) << key.name << "{" << key.labels << "} le=" << key.le << " missing";
    // The text writes 16 significant digits: counters past 2^53 differ in the last places.
    EXPECT_NEAR(it->second, value, std::abs(value) * 1e-15) << key.name << "{" << key.labels << "}";
  }
}

TEST(MetricsProtobuf, latency_histograms_carry_their_native_buckets) {
  auto snapshot = pb_snapshot();
  std::map<std::string, const pb::MetricFamily*> by_name;
  auto families = pb_decode(render_metrics_protobuf(*snapshot));
  for (const pb::MetricFamily& f : families) by_name[f.name()] = &f;
  ASSERT_TRUE(by_name.count("netwatch_tcp_rtt_seconds"));
  const pb::MetricFamily& rtt = *by_name["netwatch_tcp_rtt_seconds"];
  ASSERT_EQ(rtt.metric_size(), static_cast<int>(snapshot->services.size()));
  size_t spans_total = 0;
  for (int i = 0; i < rtt.metric_size(); ++i) {
    const pb::Histogram& h = rtt.metric(i).histogram();
    const aggregate::LatencyHistogram& l = snapshot->services[static_cast<size_t>(i)].stats.rtt;
    EXPECT_EQ(h.schema(), 3);
    EXPECT_EQ(h.zero_threshold(), std::ldexp(1.0, -20));
    EXPECT_EQ(h.zero_count(), l.native_zero);
    EXPECT_EQ(h.sample_count(), l.count);
    EXPECT_EQ(pb_native_buckets(h), pb_native_buckets(l));
    uint64_t native_total = h.zero_count();
    for (auto [index, n] : pb_native_buckets(h)) native_total += n;
    EXPECT_EQ(native_total, h.sample_count());
    spans_total += static_cast<size_t>(h.positive_span_size());
  }
  EXPECT_GT(spans_total, static_cast<size_t>(rtt.metric_size()));  // gaps between runs of buckets
  const pb::MetricFamily& connect = *by_name["netwatch_tcp_connect_duration_seconds"];
  ASSERT_GT(connect.metric_size(), 0);
  uint64_t zero_total = 0;
  for (const pb::Metric& m : connect.metric()) {
    EXPECT_EQ(m.histogram().schema(), 3);
    uint64_t native_total = m.histogram().zero_count();
    for (auto [index, n] : pb_native_buckets(m.histogram())) native_total += n;
    EXPECT_EQ(native_total, m.histogram().sample_count());
    zero_total += m.histogram().zero_count();
  }
  EXPECT_GT(zero_total, 0u);  // the 500 ns connects
}

TEST(MetricsProtobuf, an_empty_snapshot_is_the_text_one_too) {
  aggregate::Snapshot empty;
  auto http = http_metric_families(HttpStats{}, HttpLimits{});
  PbExposition text = pb_parse_text(render_metrics_text(empty, http));
  PbExposition proto = pb_as_text_series(pb_decode(render_metrics_protobuf(empty, http)));
  EXPECT_EQ(proto.help, text.help);
  EXPECT_EQ(proto.series, text.series);
}

}  // namespace
}  // namespace netwatch::serve
