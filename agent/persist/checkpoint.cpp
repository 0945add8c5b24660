#include "persist/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "util/log.h"

namespace netwatch::persist {

using nlohmann::json;

namespace {

// Format 2: named sections and fields. Add fields and sections freely: a reader skips what it
// does not know and takes 0 for what is missing. Bump only when one changes meaning.
constexpr int kFormat = 2;
// Format 1 (positional rows, written by agents before format 2) is still read: the upgrade path.
constexpr int kOldestFormat = 1;

// Connections are the bulk (up to --max-connections): fixed-size binary records, not JSON
// rows, so that saving and restoring 100k takes milliseconds, not seconds.
struct ConnectionRecord {
  uint32_t flow_index;
  uint32_t pid;
  uint64_t cookie, last_ns, first_ns, connect_latency_ns, cgroup_id;
  uint32_t seen_retrans, seen_segs_out;
  uint64_t seen_bytes_sent, seen_bytes_received;
  uint64_t retransmits, segs_out, bytes_sent, bytes_received;
  uint32_t srtt_us, rttvar_us, snd_cwnd, workload;
  uint16_t local_port, remote_port;
  uint8_t state, direction, local_family, remote_family;
  std::array<uint8_t, 16> local, remote;
  std::array<char, 16> comm;
};
static_assert(std::is_trivially_copyable_v<ConnectionRecord>);
constexpr int kConnectionRecordVersion = 1;  // bump with any change to ConnectionRecord

ConnectionRecord record_of(const aggregate::ConnectionRow& c, uint32_t flow_index) {
  ConnectionRecord r{};
  r.flow_index = flow_index;
  r.pid = c.pid;
  r.cookie = c.cookie;
  r.last_ns = c.last_ns;
  r.first_ns = c.first_ns;
  r.connect_latency_ns = c.connect_latency_ns;
  r.cgroup_id = c.cgroup_id;
  r.seen_retrans = c.kernel.retransmits;
  r.seen_segs_out = c.kernel.segs_out;
  r.seen_bytes_sent = c.kernel.bytes_sent;
  r.seen_bytes_received = c.kernel.bytes_received;
  r.retransmits = c.retransmits;
  r.segs_out = c.segs_out;
  r.bytes_sent = c.bytes_sent;
  r.bytes_received = c.bytes_received;
  r.srtt_us = c.srtt_us;
  r.rttvar_us = c.rttvar_us;
  r.snd_cwnd = c.snd_cwnd;
  r.workload = c.workload;
  r.local_port = c.local_port;
  r.remote_port = c.remote_port;
  r.state = c.state;
  r.direction = static_cast<uint8_t>(c.direction);
  r.local_family = c.local.family;
  r.remote_family = c.remote.family;
  r.local = c.local.bytes;
  r.remote = c.remote.bytes;
  r.comm = c.comm;
  return r;
}

aggregate::ConnectionRow row_of(const ConnectionRecord& r) {
  aggregate::ConnectionRow c;
  c.pid = r.pid;
  c.cookie = r.cookie;
  c.last_ns = r.last_ns;
  c.first_ns = r.first_ns;
  c.connect_latency_ns = r.connect_latency_ns;
  c.cgroup_id = r.cgroup_id;
  c.kernel = {r.seen_retrans, r.seen_segs_out, r.seen_bytes_sent, r.seen_bytes_received};
  c.retransmits = r.retransmits;
  c.segs_out = r.segs_out;
  c.bytes_sent = r.bytes_sent;
  c.bytes_received = r.bytes_received;
  c.srtt_us = r.srtt_us;
  c.rttvar_us = r.rttvar_us;
  c.snd_cwnd = r.snd_cwnd;
  c.workload = r.workload;
  c.local_port = r.local_port;
  c.remote_port = r.remote_port;
  c.state = r.state;
  c.direction = static_cast<event::Direction>(std::min<uint8_t>(r.direction, uint8_t(event::Direction::inbound)));
  c.local = {r.local_family, r.local};
  c.remote = {r.remote_family, r.remote};
  c.comm = r.comm;
  c.comm.back() = '\0';
  return c;
}

// Everything a checkpoint holds, read in full before anything is restored.
struct Parsed {
  aggregate::AggregatorState aggregator;
  CounterBase base;
};

constexpr std::array<const char*, 10> kPodFieldNames = {
    "cache_hits",          "cache_misses",    "cache_evictions", "cgroup_walks", "cgroup_walks_truncated",
    "pod_dir_scans",       "container_dir_scans", "unknown_cgroups", "unnamed_pods", "unnamed_containers"};

std::array<uint64_t*, 10> pod_fields(k8s::PodResolverStats& p) {
  return {&p.cache_hits,    &p.cache_misses,        &p.cache_evictions, &p.cgroup_walks, &p.cgroup_walks_truncated,
          &p.pod_dir_scans, &p.container_dir_scans, &p.unknown_cgroups, &p.unnamed_pods, &p.unnamed_containers};
}

template <size_t N>
void add_counts(std::array<uint64_t, N>& to, const json& from) {
  for (size_t i = 0; i < N && i < from.size(); ++i) to[i] += from[i].get<uint64_t>();
}

event::Direction direction_of(uint8_t value) {
  return static_cast<event::Direction>(std::min<uint8_t>(value, uint8_t(event::Direction::inbound)));
}

aggregate::FoldLevel fold_of(uint8_t value) {
  return static_cast<aggregate::FoldLevel>(std::min<uint8_t>(value, uint8_t(aggregate::FoldLevel::workload)));
}

event::IpAddress address_of(uint8_t family, const json::binary_t& bytes) {
  event::IpAddress a;
  a.family = family;
  std::copy_n(bytes.begin(), std::min(bytes.size(), a.bytes.size()), a.bytes.begin());
  return a;
}

// The connections' binary records, the same in both formats.
void read_connection_records(const json& layout, const json& binary, size_t flows, Parsed& p) {
  if (layout != json::array({kConnectionRecordVersion, sizeof(ConnectionRecord)}))
    throw std::runtime_error("connection records of another layout");
  const auto& records = binary.get_binary();
  if (records.size() % sizeof(ConnectionRecord) != 0) throw std::runtime_error("a truncated connection record");
  for (size_t at = 0; at < records.size(); at += sizeof(ConnectionRecord)) {
    ConnectionRecord r;
    std::memcpy(&r, records.data() + at, sizeof(r));
    if (r.flow_index < flows) p.aggregator.connections.push_back({r.flow_index, row_of(r)});
  }
}

// ---- Format 2: named.

// A field of a named section: 0 when absent (written by an agent that did not have it).
uint64_t field(const json& section, const char* name) {
  auto it = section.find(name);
  return it == section.end() ? 0 : it->get<uint64_t>();
}

const json& section(const json& parent, const char* name) {
  static const json empty = json::object();
  auto it = parent.find(name);
  return it == parent.end() ? empty : *it;
}

template <size_t N, class NameOf>
json named_counts(const std::array<uint64_t, N>& values, NameOf name_of) {
  json j = json::object();
  for (size_t i = 0; i < N; ++i) j[std::string(name_of(i))] = values[i];
  return j;
}

template <size_t N, class NameOf>
void add_named_counts(std::array<uint64_t, N>& to, const json& from, NameOf name_of) {
  for (size_t i = 0; i < N; ++i) to[i] += field(from, std::string(name_of(i)).c_str());
}

std::string_view event_name(size_t i) {
  return event::event_type_name(static_cast<event::EventType>(i));
}
std::string_view result_name(size_t i) {
  return aggregate::connect_result_name(static_cast<aggregate::ConnectResult>(i));
}

json histogram_json(const aggregate::LatencyHistogram& h) {
  return {{"count", h.count},
          {"sum_ns", h.sum_ns},
          {"buckets", h.buckets},
          {"native_zero", h.native_zero},
          {"native_first", h.native_first},
          {"native_buckets", h.native_buckets}};
}

// A checkpoint from before native buckets: each classic bucket's count goes to the native bucket
// of its upper bound (+Inf's to the highest), so the native counts still add up to count.
// A checkpoint from before the native buckets: each classic bucket's count goes to the native
// bucket of its upper bound (so migrated counts lean to their bucket's top), and what was above
// the last bound (10 s) to the native bucket just above it, not to the 256 s the native range
// ends at.
void native_from_classic(aggregate::LatencyHistogram& h) {
  using aggregate::detail::kBoundsNs;
  const int above_last = aggregate::detail::native_index_of_ns(kBoundsNs.back()) + 1;
  for (size_t i = 0; i < h.buckets.size(); ++i)
    if (h.buckets[i])
      h.add_native(i < kBoundsNs.size() ? aggregate::detail::native_index_of_ns(kBoundsNs[i]) : above_last,
                   h.buckets[i]);
}

void read_histogram(aggregate::LatencyHistogram& h, const json& j) {
  h.count = field(j, "count");
  h.sum_ns = field(j, "sum_ns");
  add_counts(h.buckets, section(j, "buckets"));  // bucket i is kLatencyBucketsSeconds[i]; the last is +Inf
  if (!j.contains("native_buckets")) return native_from_classic(h);
  h.native_zero = field(j, "native_zero");
  int64_t first = j.at("native_first").get<int64_t>();
  const json& counts = j.at("native_buckets");
  if (first < aggregate::kNativeMinIndex || first + static_cast<int64_t>(counts.size()) - 1 > aggregate::kNativeMaxIndex)
    throw std::runtime_error("native buckets outside the native index range");
  for (size_t k = 0; k < counts.size(); ++k)
    if (uint64_t n = counts[k].get<uint64_t>()) h.add_native(static_cast<int>(first + static_cast<int64_t>(k)), n);
}

json key_json(const aggregate::FlowKey& k) {
  return {{"direction", k.direction},
          {"fold", k.fold},
          {"port", k.port},
          {"workload", k.workload},
          {"peer", {{"family", k.peer.family},
                    {"bytes", json::binary(std::vector<uint8_t>(k.peer.bytes.begin(), k.peer.bytes.end()))}}}};
}

aggregate::FlowKey read_key(const json& j) {
  aggregate::FlowKey k;
  k.direction = direction_of(static_cast<uint8_t>(field(j, "direction")));
  k.fold = fold_of(static_cast<uint8_t>(field(j, "fold")));
  k.port = static_cast<uint16_t>(field(j, "port"));
  k.workload = static_cast<uint32_t>(field(j, "workload"));
  const json& peer = section(j, "peer");
  static const json no_bytes = json::binary({});
  k.peer = address_of(static_cast<uint8_t>(field(peer, "family")),
                      (peer.contains("bytes") ? peer.at("bytes") : no_bytes).get_binary());
  return k;
}

json flow_entry(const aggregate::Flow& f) {
  const aggregate::FlowStats& s = f.stats;
  json j = key_json(f.key);
  j.update({{"connects", named_counts(s.connects, result_name)},
            {"connect_latency", histogram_json(s.connect_latency)},
            {"rtt", histogram_json(s.rtt)},
            {"retransmits", s.retransmits},
            {"segments_sent", s.segments_sent},
            {"bytes_sent", s.bytes_sent},
            {"bytes_received", s.bytes_received},
            {"last_update_ns", s.last_update_ns}});
  return j;
}

aggregate::Flow read_flow(const json& j) {
  aggregate::Flow f;
  f.key = read_key(j);
  aggregate::FlowStats& s = f.stats;
  add_named_counts(s.connects, section(j, "connects"), result_name);
  read_histogram(s.connect_latency, section(j, "connect_latency"));
  read_histogram(s.rtt, section(j, "rtt"));
  s.retransmits = field(j, "retransmits");
  s.segments_sent = field(j, "segments_sent");
  s.bytes_sent = field(j, "bytes_sent");
  s.bytes_received = field(j, "bytes_received");
  s.last_update_ns = field(j, "last_update_ns");
  return f;
}

json aggregator_json(const aggregate::AggregatorState& a) {
  json labels = json::array();
  for (const k8s::WorkloadLabels& w : a.workloads.labels)
    labels.push_back({{"namespace", w.namespace_name}, {"pod", w.pod}, {"container", w.container}});
  json flows = json::array();
  for (const aggregate::Flow& f : a.flows.flows) flows.push_back(flow_entry(f));
  json services = json::array();  // only the histograms of expired flows: the others are in their flows
  for (const aggregate::FlowTable::SavedService& v : a.flows.services) {
    json j = key_json(v.key);
    j["retired"] = {{"connect_latency", histogram_json(v.retired.connect_latency)},
                    {"rtt", histogram_json(v.retired.rtt)}};
    services.push_back(std::move(j));
  }
  std::vector<uint8_t> connections;
  connections.reserve(a.connections.size() * sizeof(ConnectionRecord));
  for (const auto& [flow, row] : a.connections) {
    ConnectionRecord r = record_of(row, flow);
    const auto* bytes = reinterpret_cast<const uint8_t*>(&r);
    connections.insert(connections.end(), bytes, bytes + sizeof(r));
  }
  return {{"events", named_counts(a.events, event_name)},
          {"evicted_full", a.evicted_full},
          {"evicted_idle", a.evicted_idle},
          {"workloads", {{"overflows", a.workloads.overflows}, {"labels", std::move(labels)}}},
          {"flows",
           {{"folded_total", a.flows.folded_total},
            {"new_flow_keys_total", a.flows.new_flow_keys_total},
            {"churn_trips", a.flows.churn_trips},
            {"rows", std::move(flows)}}},
          {"services", {{"rows", std::move(services)}}},
          {"connections",
           {{"record", {kConnectionRecordVersion, sizeof(ConnectionRecord)}},
            {"records", json::binary(std::move(connections))}}}};
}

void read_format2(const json& j, Parsed& p) {
  aggregate::AggregatorState& a = p.aggregator;
  const json& agg = j.at("aggregator");
  add_named_counts(a.events, section(agg, "events"), event_name);
  a.evicted_full = field(agg, "evicted_full");
  a.evicted_idle = field(agg, "evicted_idle");
  const json& workloads = section(agg, "workloads");
  a.workloads.overflows = field(workloads, "overflows");
  for (const json& w : section(workloads, "labels"))
    a.workloads.labels.push_back({w.value("namespace", ""), w.value("pod", ""), w.value("container", "")});
  const json& flows = section(agg, "flows");
  a.flows.folded_total = field(flows, "folded_total");
  a.flows.new_flow_keys_total = field(flows, "new_flow_keys_total");  // absent before the churn breaker
  a.flows.churn_trips = field(flows, "churn_trips");
  for (const json& f : section(flows, "rows")) a.flows.flows.push_back(read_flow(f));
  for (const json& v : section(section(agg, "services"), "rows")) {  // absent before the series budget
    aggregate::FlowTable::SavedService& saved = a.flows.services.emplace_back();
    saved.key = read_key(v);
    const json& retired = section(v, "retired");
    read_histogram(saved.retired.connect_latency, section(retired, "connect_latency"));
    read_histogram(saved.retired.rtt, section(retired, "rtt"));
  }
  const json& connections = section(agg, "connections");
  if (connections.contains("records"))
    read_connection_records(connections.at("record"), connections.at("records"), a.flows.flows.size(), p);

  CounterBase& b = p.base;
  const json& kernel = section(j, "kernel");
  add_named_counts(b.kernel.emitted, section(kernel, "emitted"), event_name);
  add_named_counts(b.kernel.lost, section(kernel, "lost"), event_name);
  b.kernel.state_full = field(kernel, "state_full");
  b.kernel.state_spilled = field(kernel, "state_spilled");
  b.kernel.listeners_full = field(kernel, "listeners_full");
  for (const auto& [name, v] : section(j, "programs").items())
    b.programs.push_back({name, 0, field(v, "run_time_ns"), field(v, "run_cnt")});
  const json& reader = section(j, "reader");
  b.drains = field(reader, "drains");
  b.decode_errors = field(reader, "decode_errors");
  const json& pods = section(j, "pods");
  auto fields = pod_fields(b.pods);
  for (size_t i = 0; i < fields.size(); ++i) *fields[i] = field(pods, kPodFieldNames[i]);
}

// ---- Format 1: positional rows (the agent before format 2 wrote these). Read only.

void read_format1(const json& j, Parsed& p) {
  aggregate::AggregatorState& a = p.aggregator;
  const json& agg = j.at("aggregator");
  for (const json& w : agg.at("workloads"))
    a.workloads.labels.push_back({w.at(0).get<std::string>(), w.at(1).get<std::string>(), w.at(2).get<std::string>()});
  for (const json& r : agg.at("flows")) {
    aggregate::Flow f;
    aggregate::FlowKey& k = f.key;
    k.direction = direction_of(r.at(0).get<uint8_t>());
    k.fold = fold_of(r.at(1).get<uint8_t>());
    k.port = r.at(2).get<uint16_t>();
    k.workload = r.at(3).get<uint32_t>();
    k.peer = address_of(r.at(4).at(0).get<uint8_t>(), r.at(4).at(1).get_binary());
    aggregate::FlowStats& s = f.stats;
    add_counts(s.connects, r.at(5));
    for (auto [h, at] : {std::pair{&s.connect_latency, 6}, std::pair{&s.rtt, 7}}) {
      const json& from = r.at(at);
      h->count = from.at(0).get<uint64_t>();
      h->sum_ns = from.at(1).get<uint64_t>();
      add_counts(h->buckets, from.at(2));
      native_from_classic(*h);
    }
    s.retransmits = r.at(8).get<uint64_t>();
    s.segments_sent = r.at(9).get<uint64_t>();
    s.bytes_sent = r.at(10).get<uint64_t>();
    s.bytes_received = r.at(11).get<uint64_t>();
    s.last_update_ns = r.at(12).get<uint64_t>();
    a.flows.flows.push_back(f);
  }
  read_connection_records(agg.at("connection_record"), agg.at("connections"), a.flows.flows.size(), p);
  add_counts(a.events, agg.at("events"));
  a.evicted_full = agg.at("evicted_full").get<uint64_t>();
  a.evicted_idle = agg.at("evicted_idle").get<uint64_t>();
  a.flows.folded_total = agg.at("folded_total").get<uint64_t>();
  a.workloads.overflows = agg.at("workload_overflows").get<uint64_t>();

  CounterBase& b = p.base;
  const json& k = j.at("kernel");
  add_counts(b.kernel.emitted, k.at("emitted"));
  add_counts(b.kernel.lost, k.at("lost"));
  b.kernel.state_full = k.at("state_full").get<uint64_t>();
  b.kernel.state_spilled = k.value("state_spilled", uint64_t(0));  // absent in older checkpoints
  b.kernel.listeners_full = k.value("listeners_full", uint64_t(0));
  for (const auto& [name, v] : j.at("programs").items())
    b.programs.push_back({name, 0, v.at(1).get<uint64_t>(), v.at(0).get<uint64_t>()});
  b.drains = j.at("reader").at("drains").get<uint64_t>();
  b.decode_errors = j.at("reader").at("decode_errors").get<uint64_t>();
  if (j.contains("pods")) {
    auto fields = pod_fields(b.pods);
    const json& pods = j.at("pods");
    for (size_t i = 0; i < fields.size() && i < pods.size(); ++i) *fields[i] = pods[i].get<uint64_t>();
  }
}

}  // namespace

void CounterBase::add_to(aggregate::AgentHealth& h) const {
  for (int t = 0; t < event::kEventTypeCount; ++t) {
    h.kernel.emitted[t] += kernel.emitted[t];
    h.kernel.lost[t] += kernel.lost[t];
  }
  h.kernel.state_full += kernel.state_full;
  h.kernel.state_spilled += kernel.state_spilled;
  h.kernel.listeners_full += kernel.listeners_full;
  for (event::ProgramStats& p : h.programs) {
    auto old =
        std::find_if(programs.begin(), programs.end(), [&](const event::ProgramStats& o) { return o.name == p.name; });
    if (old == programs.end()) continue;
    p.run_cnt += old->run_cnt;
    p.run_time_ns += old->run_time_ns;
  }
  h.drains += drains;
  h.decode_errors += decode_errors;
  if (h.pods) {
    k8s::PodResolverStats from = pods;
    auto to = pod_fields(*h.pods);
    auto add = pod_fields(from);
    for (size_t i = 0; i < to.size(); ++i) *to[i] += *add[i];
  }
}

std::vector<uint8_t> save_checkpoint(const aggregate::Aggregator& aggregator, const aggregate::AgentHealth& health) {
  json programs = json::object();
  for (const event::ProgramStats& p : health.programs)
    programs[p.name] = {{"run_cnt", p.run_cnt}, {"run_time_ns", p.run_time_ns}};
  const event::KernelCounters& k = health.kernel;
  json j = {{"format", kFormat},
            {"aggregator", aggregator_json(aggregator.save())},
            {"kernel",
             {{"emitted", named_counts(k.emitted, event_name)},
              {"lost", named_counts(k.lost, event_name)},
              {"state_full", k.state_full},
              {"state_spilled", k.state_spilled},
              {"listeners_full", k.listeners_full}}},
            {"programs", std::move(programs)},
            {"reader", {{"drains", health.drains}, {"decode_errors", health.decode_errors}}}};
  if (health.pods) {
    k8s::PodResolverStats pods = *health.pods;
    auto fields = pod_fields(pods);
    json named = json::object();
    for (size_t i = 0; i < fields.size(); ++i) named[kPodFieldNames[i]] = *fields[i];
    j["pods"] = std::move(named);
  }
  return json::to_cbor(j);
}

std::optional<Restored> restore_checkpoint(std::span<const uint8_t> bytes, aggregate::Aggregator& aggregator) {
  try {
    json j = json::from_cbor(bytes.begin(), bytes.end());
    int format = j.at("format").get<int>();
    if (format < kOldestFormat || format > kFormat) {
      util::log_warn("the previous agent's checkpoint has format " + j.at("format").dump() + ", this agent reads " +
                     std::to_string(kOldestFormat) + " to " + std::to_string(kFormat) + ": counters restart from zero");
      return std::nullopt;
    }
    // Everything is read first: a malformed checkpoint throws before the aggregator changes.
    Parsed p;
    if (format == 1)
      read_format1(j, p);
    else
      read_format2(j, p);
    aggregator.restore(p.aggregator);
    return Restored{std::move(p.base), p.aggregator.connections.size(), p.aggregator.flows.flows.size()};
  } catch (const std::exception& e) {  // json's errors, and the readers' own, before anything changes
    util::log_warn(std::string("the previous agent's checkpoint is unreadable (") + e.what() +
                   "): counters restart from zero");
    return std::nullopt;
  }
}

}  // namespace netwatch::persist
