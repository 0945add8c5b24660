#include "agent/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>

#include "agent/log.h"

namespace netwatch {

using nlohmann::json;

namespace {

constexpr int kFormat = 1;  // bump when a section changes meaning; add sections freely

json counts(std::span<const uint64_t> values) {
  return json(std::vector<uint64_t>(values.begin(), values.end()));
}

template <size_t N>
void add_counts(std::array<uint64_t, N>& to, const json& from) {
  for (size_t i = 0; i < N && i < from.size(); ++i) to[i] += from[i].get<uint64_t>();
}

json address(const IpAddress& a) {
  return json::array({a.family, json::binary(std::vector<uint8_t>(a.bytes.begin(), a.bytes.end()))});
}

IpAddress address_of(const json& j) {
  IpAddress a;
  a.family = j.at(0).get<uint8_t>();
  const auto& bytes = j.at(1).get_binary();
  std::copy_n(bytes.begin(), std::min(bytes.size(), a.bytes.size()), a.bytes.begin());
  return a;
}

void merge(LatencyHistogram& to, const LatencyHistogram& from) {
  to.count += from.count;
  to.sum_ns += from.sum_ns;
  for (size_t b = 0; b < to.buckets.size(); ++b) to.buckets[b] += from.buckets[b];
}

json histogram(const LatencyHistogram& h) {
  return json::array({h.count, h.sum_ns, counts(h.buckets)});
}

void add_histogram(LatencyHistogram& to, const json& from) {
  to.count += from.at(0).get<uint64_t>();
  to.sum_ns += from.at(1).get<uint64_t>();
  add_counts(to.buckets, from.at(2));
}

// Positional arrays for the many: a flow or a connection is a row.
json flow_row(const Flow& f) {
  const FlowKey& k = f.key;
  const FlowStats& s = f.stats;
  return json::array({k.direction, k.fold, k.port, k.workload, address(k.peer), counts(s.connects),
                      histogram(s.connect_latency), histogram(s.rtt), s.retransmits, s.segments_sent, s.bytes_sent,
                      s.bytes_received, s.last_update_ns});
}

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

ConnectionRecord record_of(const ConnectionRow& c, uint32_t flow_index) {
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

ConnectionRow row_of(const ConnectionRecord& r) {
  ConnectionRow c;
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
  c.direction = static_cast<Direction>(std::min<uint8_t>(r.direction, uint8_t(Direction::inbound)));
  c.local = {r.local_family, r.local};
  c.remote = {r.remote_family, r.remote};
  c.comm = r.comm;
  c.comm.back() = '\0';
  return c;
}

json kernel_counters(const KernelCounters& k) {
  return {{"emitted", counts(k.emitted)}, {"lost", counts(k.lost)}, {"state_full", k.state_full},
          {"state_spilled", k.state_spilled}, {"listeners_full", k.listeners_full}};
}

std::array<uint64_t*, 10> pod_fields(PodResolverStats& p) {
  return {&p.cache_hits,    &p.cache_misses,        &p.cache_evictions, &p.cgroup_walks, &p.cgroup_walks_truncated,
          &p.pod_dir_scans, &p.container_dir_scans, &p.unknown_cgroups, &p.unnamed_pods, &p.unnamed_containers};
}

json pod_counters(PodResolverStats p) {
  json values = json::array();
  for (const uint64_t* field : pod_fields(p)) values.push_back(*field);
  return values;
}

}  // namespace

// The aggregator's private parts, for this file only.
struct CheckpointAccess {
  static json save(const Aggregator& a) {
    json workloads = json::array();
    for (size_t id = 0; id < a.workloads_.size(); ++id) {
      const WorkloadLabels& w = a.workloads_.labels(static_cast<uint32_t>(id));
      workloads.push_back({w.namespace_name, w.pod, w.container});
    }
    json flows = json::array();
    std::unordered_map<const Flow*, size_t> flow_index;
    a.flows_.for_each([&](const Flow& f) {
      flow_index.emplace(&f, flows.size());
      flows.push_back(flow_row(f));
    });
    std::vector<uint8_t> connections;
    connections.reserve(a.connections_.size() * sizeof(ConnectionRecord));
    a.connections_.for_each_row([&](const ConnectionRow& c, const Flow& flow) {
      ConnectionRecord r = record_of(c, static_cast<uint32_t>(flow_index.at(&flow)));
      const auto* bytes = reinterpret_cast<const uint8_t*>(&r);
      connections.insert(connections.end(), bytes, bytes + sizeof(r));
    });
    return {{"events", counts(a.rules_.records_by_type())},
            {"evicted_full", a.connections_.evicted_full()},
            {"evicted_idle", a.connections_.evicted_idle()},
            {"folded_total", a.flows_.folded_total_},
            {"workload_overflows", a.workloads_.overflows_},
            {"workloads", std::move(workloads)},
            {"flows", std::move(flows)},
            {"connection_record", {kConnectionRecordVersion, sizeof(ConnectionRecord)}},
            {"connections", json::binary(std::move(connections))}};
  }

  // Throws on a malformed checkpoint, before anything is restored.
  static std::pair<size_t, size_t> restore(const json& j, Aggregator& a) {
    // Everything is read first: a malformed checkpoint throws before the aggregator changes.
    std::vector<WorkloadLabels> workloads;
    for (const json& w : j.at("workloads"))
      workloads.push_back({w.at(0).get<std::string>(), w.at(1).get<std::string>(), w.at(2).get<std::string>()});
    std::vector<Flow> flows;
    for (const json& r : j.at("flows")) {
      Flow f;
      FlowKey& k = f.key;
      k.direction = static_cast<Direction>(std::min<uint8_t>(r.at(0).get<uint8_t>(), uint8_t(Direction::inbound)));
      k.fold = static_cast<FoldLevel>(std::min<uint8_t>(r.at(1).get<uint8_t>(), uint8_t(FoldLevel::workload)));
      k.port = r.at(2).get<uint16_t>();
      k.workload = r.at(3).get<uint32_t>();
      k.peer = address_of(r.at(4));
      FlowStats& s = f.stats;
      add_counts(s.connects, r.at(5));
      add_histogram(s.connect_latency, r.at(6));
      add_histogram(s.rtt, r.at(7));
      s.retransmits = r.at(8).get<uint64_t>();
      s.segments_sent = r.at(9).get<uint64_t>();
      s.bytes_sent = r.at(10).get<uint64_t>();
      s.bytes_received = r.at(11).get<uint64_t>();
      s.last_update_ns = r.at(12).get<uint64_t>();
      flows.push_back(f);
    }
    std::vector<std::pair<size_t, ConnectionRow>> connections;
    if (j.at("connection_record") != json::array({kConnectionRecordVersion, sizeof(ConnectionRecord)}))
      throw std::runtime_error("connection records of another layout");
    const auto& records = j.at("connections").get_binary();
    if (records.size() % sizeof(ConnectionRecord) != 0) throw std::runtime_error("a truncated connection record");
    for (size_t at = 0; at < records.size(); at += sizeof(ConnectionRecord)) {
      ConnectionRecord r;
      std::memcpy(&r, records.data() + at, sizeof(r));
      if (r.flow_index < flows.size()) connections.emplace_back(r.flow_index, row_of(r));
    }
    std::array<uint64_t, kEventTypeCount> events{};
    add_counts(events, j.at("events"));
    const uint64_t evicted_full = j.at("evicted_full").get<uint64_t>(),
                   evicted_idle = j.at("evicted_idle").get<uint64_t>(),
                   folded_total = j.at("folded_total").get<uint64_t>(),
                   workload_overflows = j.at("workload_overflows").get<uint64_t>();

    auto workload_id = [&](uint32_t old) -> uint32_t {
      if (old <= WorkloadRegistry::kOther || old >= workloads.size()) return std::min(old, WorkloadRegistry::kOther);
      return a.workloads_.intern(workloads[old]);
    };
    std::vector<Flow*> restored(flows.size());
    for (size_t i = 0; i < flows.size(); ++i) {
      FlowKey key = flows[i].key;
      key.workload = workload_id(key.workload);
      const FlowStats& from = flows[i].stats;
      Flow& f = a.flows_.resolve(key, from.last_update_ns);  // folds again if this agent's budget is smaller
      FlowStats& to = f.stats;
      for (size_t r = 0; r < to.connects.size(); ++r) to.connects[r] += from.connects[r];
      merge(to.connect_latency, from.connect_latency);
      merge(to.rtt, from.rtt);
      to.retransmits += from.retransmits;
      to.segments_sent += from.segments_sent;
      to.bytes_sent += from.bytes_sent;
      to.bytes_received += from.bytes_received;
      to.last_update_ns = std::max(to.last_update_ns, from.last_update_ns);
      restored[i] = &f;
    }
    for (auto& [index, c] : connections) {
      c.workload = workload_id(c.workload);
      a.connections_.restore(c, *restored[index]);
    }
    a.rules_.add_records_by_type(events);
    a.connections_.add_evicted(evicted_full, evicted_idle);
    a.flows_.folded_total_ += folded_total;
    a.workloads_.overflows_ += workload_overflows;
    return {connections.size(), flows.size()};
  }
};

void CounterBase::add_to(AgentHealth& h) const {
  for (int t = 0; t < kEventTypeCount; ++t) {
    h.kernel.emitted[t] += kernel.emitted[t];
    h.kernel.lost[t] += kernel.lost[t];
  }
  h.kernel.state_full += kernel.state_full;
  h.kernel.state_spilled += kernel.state_spilled;
  h.kernel.listeners_full += kernel.listeners_full;
  for (ProgramStats& p : h.programs) {
    auto old = std::find_if(programs.begin(), programs.end(), [&](const ProgramStats& o) { return o.name == p.name; });
    if (old == programs.end()) continue;
    p.run_cnt += old->run_cnt;
    p.run_time_ns += old->run_time_ns;
  }
  h.drains += drains;
  h.decode_errors += decode_errors;
  if (h.pods) {
    PodResolverStats from = pods;
    auto to = pod_fields(*h.pods);
    auto add = pod_fields(from);
    for (size_t i = 0; i < to.size(); ++i) *to[i] += *add[i];
  }
}

std::vector<uint8_t> save_checkpoint(const Aggregator& aggregator, const AgentHealth& health) {
  json programs = json::object();
  for (const ProgramStats& p : health.programs) programs[p.name] = {p.run_cnt, p.run_time_ns};
  json j = {{"format", kFormat},
            {"aggregator", CheckpointAccess::save(aggregator)},
            {"kernel", kernel_counters(health.kernel)},
            {"programs", std::move(programs)},
            {"reader", {{"drains", health.drains}, {"decode_errors", health.decode_errors}}}};
  if (health.pods) j["pods"] = pod_counters(*health.pods);
  return json::to_cbor(j);
}

std::optional<Restored> restore_checkpoint(std::span<const uint8_t> bytes, Aggregator& aggregator) {
  try {
    json j = json::from_cbor(bytes.begin(), bytes.end());
    if (j.at("format").get<int>() != kFormat) {
      log_warn("the previous agent's checkpoint has format " + j.at("format").dump() + ", this agent reads " +
               std::to_string(kFormat) + ": counters restart from zero");
      return std::nullopt;
    }
    // The counter bases first: they may still throw, restore() changes the aggregator.
    Restored r;
    const json& k = j.at("kernel");
    add_counts(r.base.kernel.emitted, k.at("emitted"));
    add_counts(r.base.kernel.lost, k.at("lost"));
    r.base.kernel.state_full = k.at("state_full").get<uint64_t>();
    r.base.kernel.state_spilled = k.value("state_spilled", uint64_t(0));  // absent in older checkpoints
    r.base.kernel.listeners_full = k.value("listeners_full", uint64_t(0));
    for (const auto& [name, v] : j.at("programs").items())
      r.base.programs.push_back({name, 0, v.at(1).get<uint64_t>(), v.at(0).get<uint64_t>()});
    r.base.drains = j.at("reader").at("drains").get<uint64_t>();
    r.base.decode_errors = j.at("reader").at("decode_errors").get<uint64_t>();
    if (j.contains("pods")) {
      auto fields = pod_fields(r.base.pods);
      const json& p = j.at("pods");
      for (size_t i = 0; i < fields.size() && i < p.size(); ++i) *fields[i] = p[i].get<uint64_t>();
    }
    std::tie(r.connections, r.flows) = CheckpointAccess::restore(j.at("aggregator"), aggregator);
    return r;
  } catch (const std::exception& e) {  // json's errors, and restore()'s own before it changes anything
    log_warn(std::string("the previous agent's checkpoint is unreadable (") + e.what() +
             "): counters restart from zero");
    return std::nullopt;
  }
}

}  // namespace netwatch
