#include "serve/snapshot_json.h"

#include <algorithm>

namespace netwatch::serve {
namespace {

double ratio(uint64_t part, uint64_t whole) { return whole ? double(part) / double(whole) : 0.0; }

nlohmann::json workload_json(const k8s::WorkloadLabels& w) {
  return {{"namespace", w.namespace_name}, {"pod", w.pod}, {"container", w.container}};
}

nlohmann::json connection_json(const aggregate::ConnectionView& v, uint64_t now_mono_ns) {
  const aggregate::ConnectionRow& c = v.connection;
  nlohmann::json j = {
      {"cookie", c.cookie},
      {"direction", event::direction_name(c.direction)},
      {"state", event::tcp_state_name(c.state)},
      {"pid", c.pid},
      {"comm", std::string(c.comm.data(), strnlen(c.comm.data(), c.comm.size()))},
      {"family", c.local.family},
      {"local", c.local.to_string()},
      {"local_port", c.local_port},
      {"remote", c.remote.to_string()},
      {"remote_port", c.remote_port},
      {"age_s", double(now_mono_ns - std::min(c.first_ns, now_mono_ns)) / 1e9},
      {"idle_s", double(now_mono_ns - std::min(c.last_ns, now_mono_ns)) / 1e9},
      {"connect_latency_ns", c.connect_latency_ns},
      {"srtt_us", c.srtt_us},
      {"rttvar_us", c.rttvar_us},
      {"snd_cwnd", c.snd_cwnd},
      {"retransmits", c.retransmits},
      {"segs_out", c.segs_out},
      {"retransmit_ratio", ratio(c.retransmits, c.segs_out)},
      {"bytes_sent", c.bytes_sent},
      {"bytes_received", c.bytes_received},
      {"cgroup_id", c.cgroup_id},
  };
  j.update(workload_json(v.workload));
  return j;
}

nlohmann::json flow_json(const aggregate::FlowView& f) {
  const aggregate::FlowStats& s = f.stats;
  nlohmann::json connects = nlohmann::json::object();
  for (int r = 0; r < aggregate::kConnectResultCount; ++r)
    connects[std::string(aggregate::connect_result_name(static_cast<aggregate::ConnectResult>(r)))] = s.connects[r];
  nlohmann::json j = {
      {"direction", event::direction_name(f.key.direction)},
      {"peer", f.peer_label()},
      {"port", f.port_label()},
      {"active", s.active},
      {"connects", connects},
      {"retransmits", s.retransmits},
      {"segments_sent", s.segments_sent},
      {"retransmit_ratio", ratio(s.retransmits, s.segments_sent)},
      {"bytes_sent", s.bytes_sent},
      {"bytes_received", s.bytes_received},
      {"connect_latency_p50_s", s.connect_latency.quantile(0.5)},
      {"connect_latency_p99_s", s.connect_latency.quantile(0.99)},
      {"rtt_p50_s", s.rtt.quantile(0.5)},
      {"rtt_p99_s", s.rtt.quantile(0.99)},
  };
  j.update(workload_json(f.workload));
  return j;
}

// Everything but the connection list.
nlohmann::json summary_json(const aggregate::Snapshot& s, size_t listed) {
  nlohmann::json flows = nlohmann::json::array();
  for (const aggregate::FlowView& f : s.flows) flows.push_back(flow_json(f));
  return {
      {"ts_ns", s.taken_unix_ns},
      {"node", s.node},
      {"connections_total", s.tracked_connections()},
      {"connections_truncated", s.tracked_connections() > listed},
      {"flows", std::move(flows)},
      {"series_budget_stage", static_cast<int>(s.health.stage)},
      {"events_lost", s.health.kernel.total_lost()},
  };
}

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

nlohmann::json snapshot_to_json(const aggregate::Snapshot& s, size_t connection_limit) {
  // Listed most recently active first: the snapshot keeps them least recently active first.
  size_t n = std::min(connection_limit, s.connections.size());
  nlohmann::json connections = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i)
    connections.push_back(connection_json(s.connections[s.connections.size() - 1 - i], s.taken_mono_ns));
  nlohmann::json j = summary_json(s, n);
  j["connections"] = std::move(connections);
  return j;
}

std::string snapshot_to_json_text(const aggregate::Snapshot& s, size_t connection_limit) {
  size_t n = std::min(connection_limit, s.connections.size());
  // Object keys dump in sorted order and "connections" sorts first, so the list goes right after
  // the opening brace of the summary.
  std::string summary = dump(summary_json(s, n));
  std::string text = "{\"connections\":[";
  text.reserve(n * 420 + summary.size() + 32);
  for (size_t i = 0; i < n; ++i) {
    if (i) text += ',';
    text += dump(connection_json(s.connections[s.connections.size() - 1 - i], s.taken_mono_ns));
  }
  text += "],";
  text.append(summary, 1);
  return text;
}

}  // namespace netwatch::serve
