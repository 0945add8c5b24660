#include "serve/metrics_render.h"

#include <prometheus/text_serializer.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

#include "serve/flow_families.h"

namespace netwatch::serve {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

namespace {
// direction, [peer,] port, namespace, pod, container.
std::vector<ClientMetric::Label> key_labels(const aggregate::FlowKey& key, const k8s::WorkloadLabels& workload,
                                            const std::string* peer, std::string port) {
  bool fold_workload = key.fold >= aggregate::FoldLevel::workload;
  std::vector<ClientMetric::Label> l = {{"direction", std::string(event::direction_name(key.direction))}};
  if (peer) l.push_back({"peer", *peer});
  l.push_back({"port", std::move(port)});
  l.push_back({"namespace", fold_workload ? "other" : workload.namespace_name});
  l.push_back({"pod", fold_workload ? "other" : workload.pod});
  l.push_back({"container", fold_workload ? "other" : workload.container});
  return l;
}
}  // namespace

std::vector<ClientMetric::Label> flow_labels(const aggregate::FlowView& f) {
  std::string peer = f.peer_label();
  return key_labels(f.key, f.workload, &peer, f.port_label());
}

std::vector<ClientMetric::Label> service_labels(const aggregate::ServiceView& v) {
  return key_labels(v.key, v.workload, nullptr, v.port_label());
}

namespace {

ClientMetric value(std::vector<ClientMetric::Label> labels, double v, MetricType type) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) m.counter.value = v;
  else m.gauge.value = v;
  return m;
}

MetricFamily family(std::string name, std::string help, MetricType type) {
  return MetricFamily{std::move(name), std::move(help), type, {}};
}

// The text path for the flow and service families: a scrape's cost is here.
// It writes into one string the bytes prometheus::TextSerializer would write for the same
// families (tests/unit/serve/metrics_render_test.cpp builds those as its oracle and compares), with each flow's label block built once instead of a label
// vector and ostream formatting per series.

// As TextSerializer writes a double: "%.16g" (its precision is max_digits10 - 1), "Nan", "+Inf".
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "Nan";
  } else if (std::isinf(v)) {
    out += v < 0 ? "-Inf" : "+Inf";
  } else {
    char buf[32];
    out.append(buf, std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 16).ptr);
  }
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
}

// A label value in the exposition format's escapes.
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
}

// direction="...",peer="...",port="...",namespace="...",pod="...",container="..."
std::string label_block(const std::vector<ClientMetric::Label>& labels) {
  std::string out;
  const char* separator = "";
  for (const ClientMetric::Label& l : labels) {
    out += separator;
    out += l.name;
    out += "=\"";
    append_label_value(out, l.value);
    out += '"';
    separator = ",";
  }
  return out;
}

// ",le=\"2.5e-05\"", ... ",le=\"+Inf\"": the bucket labels, formatted once.
const std::array<std::string, aggregate::kLatencyBucketsSeconds.size() + 1>& le_labels() {
  static const auto labels = [] {
    std::array<std::string, aggregate::kLatencyBucketsSeconds.size() + 1> l;
    for (size_t i = 0; i <= aggregate::kLatencyBucketsSeconds.size(); ++i) {
      l[i] = ",le=\"";
      append_double(l[i], i < aggregate::kLatencyBucketsSeconds.size() ? aggregate::kLatencyBucketsSeconds[i]
                                                                       : std::numeric_limits<double>::infinity());
      l[i] += '"';
    }
    return l;
  }();
  return labels;
}

// ",result=\"ok\"", ...: by ConnectResult.
const std::array<std::string, aggregate::kConnectResultCount>& result_labels() {
  static const auto labels = [] {
    std::array<std::string, aggregate::kConnectResultCount> l;
    for (int r = 0; r < aggregate::kConnectResultCount; ++r)
      l[r] =
          ",result=\"" + std::string(aggregate::connect_result_name(static_cast<aggregate::ConnectResult>(r))) + "\"";
    return l;
  }();
  return labels;
}

class FlowTextWriter {
 public:
  FlowTextWriter(const aggregate::Snapshot& s, std::string& out) : s_(s), out_(out) {
    labels_.reserve(s.flows.size());
    for (const aggregate::FlowView& f : s.flows) labels_.push_back(label_block(flow_labels(f)));
    service_labels_.reserve(s.services.size());
    for (const aggregate::ServiceView& v : s.services) service_labels_.push_back(label_block(service_labels(v)));
  }

  void write() {
    header(kConnects);
    each_flow([&](const aggregate::FlowView& f, const std::string& labels) {
      for (int r = 0; r < aggregate::kConnectResultCount; ++r) {
        if (!f.stats.connects[r]) continue;  // absent until it happens, like any labelled counter
        series(kConnects, "", labels, result_labels()[r]);
        append_double(out_, double(f.stats.connects[r]));
        out_ += '\n';
      }
    });
    header(kConnectDuration);
    each_service([&](const aggregate::ServiceView& v, const std::string& labels) {
      if (v.key.direction != event::Direction::inbound) histogram(kConnectDuration, labels, v.stats.connect_latency);
    });
    counter(kRetransmits, [](const aggregate::FlowStats& st) { return double(st.retransmits); });
    counter(kSegments, [](const aggregate::FlowStats& st) { return double(st.segments_sent); });
    header(kRtt);
    each_service([&](const aggregate::ServiceView& v, const std::string& labels) { histogram(kRtt, labels, v.stats.rtt); });
    counter(kActive, [](const aggregate::FlowStats& st) { return double(st.active); });
    counter(kBytesSent, [](const aggregate::FlowStats& st) { return double(st.bytes_sent); });
    counter(kBytesReceived, [](const aggregate::FlowStats& st) { return double(st.bytes_received); });
  }

 private:
  template <class F>
  void each_flow(F&& f) {
    for (size_t i = 0; i < s_.flows.size(); ++i) f(s_.flows[i], labels_[i]);
  }
  template <class F>
  void each_service(F&& f) {
    for (size_t i = 0; i < s_.services.size(); ++i) f(s_.services[i], service_labels_[i]);
  }
  void header(const FlowFamily& f) {
    static constexpr const char* kTypes[] = {"counter", "gauge", "summary", "untyped", "histogram"};
    out_ += "# HELP ";
    out_ += f.name;
    out_ += ' ';
    out_ += f.help;
    out_ += "\n# TYPE ";
    out_ += f.name;
    out_ += ' ';
    out_ += kTypes[static_cast<int>(f.type)];
    out_ += '\n';
  }
  // name<suffix>{labels<extra>} and the space before the value.
  void series(const FlowFamily& f, std::string_view suffix, const std::string& labels, std::string_view extra) {
    out_ += f.name;
    out_ += suffix;
    out_ += '{';
    out_ += labels;
    out_ += extra;
    out_ += "} ";
  }
  template <class Value>
  void counter(const FlowFamily& f, Value value) {
    header(f);
    each_flow([&](const aggregate::FlowView& flow, const std::string& labels) {
      series(f, "", labels, "");
      append_double(out_, value(flow.stats));
      out_ += '\n';
    });
  }
  void histogram(const FlowFamily& f, const std::string& labels, const aggregate::LatencyHistogram& h) {
    series(f, "_count", labels, "");
    append_uint(out_, h.count);
    out_ += '\n';
    series(f, "_sum", labels, "");
    append_double(out_, static_cast<double>(h.sum_ns) / 1e9);
    out_ += '\n';
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= aggregate::kLatencyBucketsSeconds.size(); ++i) {
      cumulative += h.buckets[i];
      series(f, "_bucket", labels, le_labels()[i]);
      append_uint(out_, i < aggregate::kLatencyBucketsSeconds.size() ? cumulative : h.count);
      out_ += '\n';
    }
  }

  const aggregate::Snapshot& s_;
  std::string& out_;
  std::vector<std::string> labels_;
  std::vector<std::string> service_labels_;
};

void render_health(const aggregate::Snapshot& s, size_t other_series, std::vector<MetricFamily>& out) {
  const aggregate::AgentHealth& h = s.health;
  auto events = family("netwatch_events_total", "Events received from the kernel and decoded", MetricType::Counter);
  auto produced = family("netwatch_kernel_events_total",
                         "Events the kernel programs produced: received plus lost", MetricType::Counter);
  auto lost = family("netwatch_events_lost_total", "Events the kernel could not deliver: the buffer was full",
                     MetricType::Counter);
  for (int t = 1; t < event::kEventTypeCount; ++t) {
    std::vector<ClientMetric::Label> l = {
        {"type", std::string(event::event_type_name(static_cast<event::EventType>(t)))}};
    events.metric.push_back(value(l, double(h.events[t]), MetricType::Counter));
    produced.metric.push_back(value(l, double(h.kernel.emitted[t] + h.kernel.lost[t]), MetricType::Counter));
    lost.metric.push_back(value(std::move(l), double(h.kernel.lost[t]), MetricType::Counter));
  }
  out.push_back(std::move(events));
  out.push_back(std::move(produced));
  out.push_back(std::move(lost));

  auto scalar = [&](std::string name, std::string help, MetricType type, double v) {
    auto f = family(std::move(name), std::move(help), type);
    f.metric.push_back(value({}, v, type));
    out.push_back(std::move(f));
  };
  scalar("netwatch_untracked_sockets_total",
         "Sockets netwatch could not track: no per-socket state could be made (tracepoint variant: state table "
         "full; tp_btf: socket storage allocation failed)",
         MetricType::Counter, double(h.kernel.state_full));
  scalar("netwatch_state_table_spills_total",
         "New sockets whose state went to socket storage because the young-socket table was full: still tracked, "
         "only slower to set up (expected on nodes with more young or idle connections than the table holds)",
         MetricType::Counter, double(h.kernel.state_spilled));
  scalar("netwatch_untracked_listeners_total",
         "Listening sockets whose owner netwatch could not record (its listener map was full): their inbound "
         "connections have no pid or comm",
         MetricType::Counter, double(h.kernel.listeners_full));
  scalar("netwatch_reader_drains_total", "Event buffer drains", MetricType::Counter, double(h.drains));
  scalar("netwatch_decode_errors_total", "Malformed event records dropped", MetricType::Counter,
         double(h.decode_errors));
  scalar("netwatch_tracked_connections", "Connections in the connection table", MetricType::Gauge,
         double(s.tracked_connections()));
  scalar("netwatch_tracked_connections_limit", "Connection table capacity", MetricType::Gauge,
         double(h.max_connections));

  auto evictions = family("netwatch_connection_evictions_total",
                          "Live connections dropped from the table: capacity (least recently active) or idle",
                          MetricType::Counter);
  evictions.metric.push_back(value({{"reason", "capacity"}}, double(h.evicted_full), MetricType::Counter));
  evictions.metric.push_back(value({{"reason", "idle"}}, double(h.evicted_idle), MetricType::Counter));
  out.push_back(std::move(evictions));

  scalar("netwatch_flows", "Exported flows (label sets of the netwatch_tcp_* counters)", MetricType::Gauge,
         double(s.flows.size()));
  scalar("netwatch_services",
         "Exported services: flows without their peer, the label sets of the netwatch_tcp_* histograms",
         MetricType::Gauge, double(s.services.size()));
  scalar("netwatch_series_budget", "The series budget (--max-series): most series this endpoint exports",
         MetricType::Gauge, double(h.series_budget));
  if (h.flow_cap)
    scalar("netwatch_series_budget_flows", "Most flows exported before folding (--max-flows)", MetricType::Gauge,
           double(h.flow_cap));
  scalar("netwatch_series_budget_stage",
         "0 full detail; 1 some peers folded to \"other\"; 2 some ports folded too; 3 everything folded",
         MetricType::Gauge, double(static_cast<int>(h.stage)));
  scalar("netwatch_series_budget_folded_total",
         "Connections and failed connects counted in a folded flow instead of their own", MetricType::Counter,
         double(h.folded_total));
  scalar("netwatch_series_churn_threshold",
         "New flow keys per minute past which new flows fold their peer (the churn breaker); 0: off",
         MetricType::Gauge, double(h.churn_threshold));
  scalar("netwatch_series_churn_breaker",
         "1 while the churn breaker folds new flows' peers: too many new flow keys in the last minute",
         MetricType::Gauge, h.churn_breaker_tripped ? 1 : 0);
  scalar("netwatch_series_churn_trips_total", "Times the churn breaker tripped", MetricType::Counter,
         double(h.churn_trips));
  scalar("netwatch_new_flow_keys_total", "Full-detail flow keys seen new (what the churn breaker counts)",
         MetricType::Counter, double(h.new_flow_keys));
  scalar("netwatch_workload_overflows_total", "Connections whose workload labels were folded: too many workloads",
         MetricType::Counter, double(h.workload_overflows));

  auto programs = family("netwatch_program_info", "Attached BPF programs and the variant chosen", MetricType::Gauge);
  auto runs = family("netwatch_program_runs_total", "Program invocations (needs kernel.bpf_stats_enabled=1)",
                     MetricType::Counter);
  auto run_time = family("netwatch_program_run_seconds_total",
                         "Time spent in the program (needs kernel.bpf_stats_enabled=1)", MetricType::Counter);
  for (const event::ProgramStats& p : h.programs) {
    programs.metric.push_back(
        value({{"program", p.name}, {"variant", h.variant}, {"transport", h.transport}}, 1, MetricType::Gauge));
    runs.metric.push_back(value({{"program", p.name}}, double(p.run_cnt), MetricType::Counter));
    run_time.metric.push_back(value({{"program", p.name}}, double(p.run_time_ns) / 1e9, MetricType::Counter));
  }
  out.push_back(std::move(programs));
  out.push_back(std::move(runs));
  out.push_back(std::move(run_time));

  if (h.pods) {
    const k8s::PodResolverStats& p = *h.pods;
    scalar("netwatch_pod_cache_hits_total", "Pod label lookups answered from the cache", MetricType::Counter,
           double(p.cache_hits));
    scalar("netwatch_pod_cache_misses_total", "Pod label lookups that had to resolve", MetricType::Counter,
           double(p.cache_misses));
    scalar("netwatch_pod_cache_evictions_total", "Pod label cache entries evicted (least recently used)",
           MetricType::Counter, double(p.cache_evictions));
    scalar("netwatch_pod_cache_entries", "Pod label cache entries", MetricType::Gauge, double(p.cache_entries));
    scalar("netwatch_cgroup_walks_total", "Walks of the cgroup2 mount", MetricType::Counter, double(p.cgroup_walks));
    scalar("netwatch_cgroup_walks_truncated_total", "cgroup2 walks that stopped at their directory cap",
           MetricType::Counter, double(p.cgroup_walks_truncated));
    scalar("netwatch_unresolved_cgroups_total", "cgroup ids no walk found: labelled as host", MetricType::Counter,
           double(p.unknown_cgroups));
    scalar("netwatch_unnamed_pods_total", "Pod cgroups with no pod log directory", MetricType::Counter,
           double(p.unnamed_pods));
    scalar("netwatch_unnamed_containers_total", "Container cgroups whose container name is unknown",
           MetricType::Counter, double(p.unnamed_containers));
  }

  auto build = family("netwatch_build_info", "netwatch version", MetricType::Gauge);
  build.metric.push_back(value({{"version", NETWATCH_VERSION}}, 1, MetricType::Gauge));
  out.push_back(std::move(build));

  // Last, as it counts everything: the other families, these ones and itself.
  size_t series = other_series + 1;
  for (const MetricFamily& f : out) series += f.metric.size();
  scalar("netwatch_series", "Series this /metrics exposition holds, this one included", MetricType::Gauge,
         double(series));
}

}  // namespace

size_t flow_family_series(const aggregate::Snapshot& snapshot) {
  size_t series = 0;
  for (const aggregate::FlowView& f : snapshot.flows) {
    series += aggregate::kFlowCounterSeries;
    for (uint64_t n : f.stats.connects) series += n != 0;
  }
  for (const aggregate::ServiceView& v : snapshot.services) series += aggregate::service_series(v.key.direction);
  return series;
}

std::vector<MetricFamily> render_health_families(const aggregate::Snapshot& snapshot, size_t other_series) {
  std::vector<MetricFamily> out;
  render_health(snapshot, other_series, out);
  return out;
}

std::string render_metrics_text(const aggregate::Snapshot& snapshot, const std::vector<MetricFamily>& extra) {
  std::string text;
  text.reserve(snapshot.flows.size() * 1000 + snapshot.services.size() * 6000 + 16384);
  FlowTextWriter(snapshot, text).write();
  size_t extra_series = 0;
  for (const MetricFamily& f : extra) extra_series += f.metric.size();
  std::vector<MetricFamily> families = render_health_families(snapshot, flow_family_series(snapshot) + extra_series);
  families.insert(families.end(), extra.begin(), extra.end());
  std::ostringstream health_text;
  prometheus::TextSerializer().Serialize(health_text, families);
  text += health_text.str();
  return text;
}

std::vector<MetricFamily> http_metric_families(const HttpStats& stats, const HttpLimits& limits) {
  std::vector<MetricFamily> out;
  auto labelled = [&](std::string name, std::string help, MetricType type, const std::string& label,
                      std::vector<std::pair<std::string, double>> values) {
    auto f = family(std::move(name), std::move(help), type);
    for (auto& [l, v] : values) f.metric.push_back(value({{label, l}}, v, type));
    out.push_back(std::move(f));
  };
  auto open = family("netwatch_http_connections_open", "HTTP connections open now", MetricType::Gauge);
  open.metric.push_back(value({}, double(stats.connections_open), MetricType::Gauge));
  out.push_back(std::move(open));
  labelled("netwatch_http_connections_limit",
           "Most HTTP connections open at once: overall, and from one client address", MetricType::Gauge, "scope",
           {{"overall", double(limits.max_connections)}, {"per_client", double(limits.max_connections_per_client)}});
  labelled("netwatch_http_connections_refused_total", "HTTP connections closed at accept: a connection limit was hit",
           MetricType::Counter, "reason",
           {{"overall_limit", double(stats.refused_overall)}, {"per_client_limit", double(stats.refused_per_client)}});
  labelled("netwatch_http_requests_timed_out_total",
           "HTTP connections closed by a deadline: a request head (TLS handshake included) not complete in "
           "--http-head-timeout, or a keep-alive connection idle for --http-idle-timeout",
           MetricType::Counter, "phase", {{"head", double(stats.timed_out_head)}, {"idle", double(stats.timed_out_idle)}});
  labelled("netwatch_http_requests_rejected_total",
           "HTTP requests refused for their size: 414 URI over --http-max-uri-bytes, 431 headers over "
           "--http-max-header-bytes",
           MetricType::Counter, "code", {{"414", double(stats.rejected_uri)}, {"431", double(stats.rejected_header)}});
  return out;
}

}  // namespace netwatch::serve
