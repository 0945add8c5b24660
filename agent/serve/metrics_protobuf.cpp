#include "serve/metrics_protobuf.h"

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <stdexcept>

#include "prometheus_client/metrics.pb.h"
#include "serve/flow_families.h"
#include "serve/metrics_render.h"

namespace netwatch::serve {
namespace {

namespace pb = io::prometheus::client;
using prometheus::ClientMetric;
using prometheus::MetricType;

pb::MetricType proto_type(MetricType t) {
  switch (t) {
    case MetricType::Counter: return pb::COUNTER;
    case MetricType::Gauge: return pb::GAUGE;
    case MetricType::Summary: return pb::SUMMARY;
    case MetricType::Untyped: return pb::UNTYPED;
    case MetricType::Histogram: return pb::HISTOGRAM;
  }
  throw std::logic_error("render_metrics_protobuf: unknown prometheus-cpp metric type");
}

void add_labels(pb::Metric& m, const std::vector<ClientMetric::Label>& labels) {
  for (const ClientMetric::Label& l : labels) {
    pb::LabelPair* p = m.add_label();
    p->set_name(l.name);
    p->set_value(l.value);
  }
}

// Classic buckets, then the native ones: runs of non-empty buckets as spans (the first span's
// offset is its first index, a later one's the gap since the previous span), counts as deltas.
void fill_histogram(pb::Histogram& h, const aggregate::LatencyHistogram& l) {
  h.set_sample_count(l.count);
  h.set_sample_sum(static_cast<double>(l.sum_ns) / 1e9);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < aggregate::kLatencyBucketsSeconds.size(); ++i) {
    cumulative += l.buckets[i];
    pb::Bucket* b = h.add_bucket();
    b->set_cumulative_count(cumulative);
    b->set_upper_bound(aggregate::kLatencyBucketsSeconds[i]);
  }
  // zero_threshold > 0 also marks an empty histogram as native to Prometheus 2.42's parser.
  h.set_schema(aggregate::kNativeSchema);
  h.set_zero_threshold(aggregate::kNativeZeroThreshold);
  h.set_zero_count(l.native_zero);
  pb::BucketSpan* span = nullptr;
  int next_index = 0;  // the index after the current span's last
  uint64_t previous = 0;
  for (size_t k = 0; k < l.native_buckets.size(); ++k) {
    uint64_t n = l.native_buckets[k];
    if (!n) continue;
    int index = l.native_first + static_cast<int>(k);
    if (!span || index != next_index) {
      int offset = span ? index - next_index : index;
      span = h.add_positive_span();
      span->set_offset(offset);
    }
    span->set_length(span->length() + 1);
    next_index = index + 1;
    h.add_positive_delta(static_cast<int64_t>(n - previous));
    previous = n;
  }
}

class FamilyWriter {
 public:
  explicit FamilyWriter(std::string& out) : stream_(&out) {}

  // A family of plain values (health, HTTP), as prometheus-cpp holds it.
  void write(const prometheus::MetricFamily& f) {
    pb::MetricFamily& out = start(f.name.c_str(), f.help.c_str(), proto_type(f.type));
    for (const ClientMetric& c : f.metric) {
      pb::Metric* m = out.add_metric();
      add_labels(*m, c.label);
      switch (f.type) {
        case MetricType::Counter: m->mutable_counter()->set_value(c.counter.value); break;
        case MetricType::Gauge: m->mutable_gauge()->set_value(c.gauge.value); break;
        case MetricType::Untyped: m->mutable_untyped()->set_value(c.untyped.value); break;
        default: throw std::logic_error("render_metrics_protobuf: no conversion for family " + f.name);
      }
    }
    finish();
  }

  pb::MetricFamily& start(const char* name, const char* help, pb::MetricType type) {
    family_.Clear();
    family_.set_name(name);
    family_.set_help(help);
    family_.set_type(type);
    return family_;
  }
  pb::MetricFamily& start(const FlowFamily& f) { return start(f.name, f.help, proto_type(f.type)); }
  void finish() {
    if (!google::protobuf::util::SerializeDelimitedToZeroCopyStream(family_, &stream_))
      throw std::runtime_error("render_metrics_protobuf: serializing " + family_.name() + " failed");
  }

 private:
  pb::MetricFamily family_;
  google::protobuf::io::StringOutputStream stream_;
};

template <class Row>
std::vector<std::vector<ClientMetric::Label>> labels_of(const std::vector<Row>& rows, auto label) {
  std::vector<std::vector<ClientMetric::Label>> out;
  out.reserve(rows.size());
  for (const Row& r : rows) out.push_back(label(r));
  return out;
}

void write_flow_families(const aggregate::Snapshot& s, FamilyWriter& w) {
  auto flow_label_sets = labels_of(s.flows, flow_labels);
  auto service_label_sets = labels_of(s.services, service_labels);
  auto plain = [&](const FlowFamily& family, auto value) {
    pb::MetricFamily& out = w.start(family);
    for (size_t i = 0; i < s.flows.size(); ++i) {
      pb::Metric* m = out.add_metric();
      add_labels(*m, flow_label_sets[i]);
      double v = static_cast<double>(value(s.flows[i].stats));
      if (family.type == MetricType::Gauge) m->mutable_gauge()->set_value(v);
      else m->mutable_counter()->set_value(v);
    }
    w.finish();
  };
  auto histogram = [&](const FlowFamily& family, auto select) {
    pb::MetricFamily& out = w.start(family);
    for (size_t i = 0; i < s.services.size(); ++i) {
      const aggregate::LatencyHistogram* h = select(s.services[i]);
      if (!h) continue;
      pb::Metric* m = out.add_metric();
      add_labels(*m, service_label_sets[i]);
      fill_histogram(*m->mutable_histogram(), *h);
    }
    w.finish();
  };

  pb::MetricFamily& connects = w.start(kConnects);
  for (size_t i = 0; i < s.flows.size(); ++i) {
    const aggregate::FlowStats& st = s.flows[i].stats;
    for (int r = 0; r < aggregate::kConnectResultCount; ++r) {
      if (!st.connects[r]) continue;  // absent until it happens, as in the text
      pb::Metric* m = connects.add_metric();
      add_labels(*m, flow_label_sets[i]);
      pb::LabelPair* result = m->add_label();
      result->set_name("result");
      result->set_value(std::string(aggregate::connect_result_name(static_cast<aggregate::ConnectResult>(r))));
      m->mutable_counter()->set_value(static_cast<double>(st.connects[r]));
    }
  }
  w.finish();
  histogram(kConnectDuration, [](const aggregate::ServiceView& v) {
    return v.key.direction != event::Direction::inbound ? &v.stats.connect_latency : nullptr;
  });
  plain(kRetransmits, [](const aggregate::FlowStats& st) { return st.retransmits; });
  plain(kSegments, [](const aggregate::FlowStats& st) { return st.segments_sent; });
  histogram(kRtt, [](const aggregate::ServiceView& v) { return &v.stats.rtt; });
  plain(kActive, [](const aggregate::FlowStats& st) { return st.active; });
  plain(kBytesSent, [](const aggregate::FlowStats& st) { return st.bytes_sent; });
  plain(kBytesReceived, [](const aggregate::FlowStats& st) { return st.bytes_received; });
}

}  // namespace

std::string render_metrics_protobuf(const aggregate::Snapshot& snapshot,
                                    const std::vector<prometheus::MetricFamily>& extra) {
  size_t extra_series = 0;
  for (const prometheus::MetricFamily& f : extra) extra_series += f.metric.size();
  std::string out;
  {
    FamilyWriter w(out);  // trims `out` to what was written when it goes
    write_flow_families(snapshot, w);
    for (const prometheus::MetricFamily& f :
         render_health_families(snapshot, flow_family_series(snapshot) + extra_series))
      w.write(f);
    for (const prometheus::MetricFamily& f : extra) w.write(f);
  }
  return out;
}

}  // namespace netwatch::serve
