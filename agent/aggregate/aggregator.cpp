#include "aggregate/aggregator.h"

#include <algorithm>
#include <unordered_map>

namespace netwatch::aggregate {

std::string port_label(const FlowKey& key) {
  return key.fold >= FoldLevel::port ? "other" : std::to_string(key.port);
}
std::string FlowView::peer_label() const {
  return key.fold >= FoldLevel::peer ? "other" : key.peer.to_string();
}

Aggregator::Aggregator(const AggregatorConfig& config, WorkloadResolver resolver)
    : config_(config),
      resolver_(std::move(resolver)),
      workloads_(config.max_workloads),
      flows_(FlowTableLimits{config.max_series, config.max_flows, config.churn_new_flows_per_minute}),
      connections_(ConnectionTableLimits{config.max_connections}),
      rules_(flows_, connections_, [this](uint64_t cgroup_id) {
        return resolver_ ? workloads_.intern(resolver_(cgroup_id)) : WorkloadRegistry::kHost;
      }) {}

void Aggregator::on_event(const event::Event& event) {
  nw_event raw;
  event::EventRecord record = event::EventRecord::encode(event, raw);
  on_records({&record, 1});
}

void Aggregator::on_records(std::span<const event::EventRecord> records) {
  rules_.apply(records);
}

void Aggregator::expire(uint64_t now_mono_ns) {
  connections_.expire_idle(now_mono_ns, config_.connection_idle_ns);
  flows_.expire_idle(now_mono_ns, config_.flow_idle_ns);
}

std::shared_ptr<Snapshot> Aggregator::snapshot(uint64_t now_mono_ns, uint64_t now_unix_ns,
                                               size_t connection_limit) const {
  auto s = std::make_shared<Snapshot>();
  s->taken_mono_ns = now_mono_ns;
  s->taken_unix_ns = now_unix_ns;
  s->flows.reserve(flows_.size());
  flows_.for_each([&](const Flow& f) { s->flows.push_back({f.key, workloads_.labels(f.key.workload), f.stats}); });
  s->services.reserve(flows_.services());
  flows_.for_each_service_stats([&](const FlowKey& key, const ServiceStats& stats) {
    s->services.push_back({key, workloads_.labels(key.workload), stats});
  });
  s->connections_total = connections_.size();
  s->connections.reserve(std::min(connection_limit, connections_.size()));
  connections_.for_each_recent(connection_limit, [&](const Connection& c) {
    ConnectionView& v = s->connections.emplace_back();
    v.connection = ConnectionTable::row_of(c);
    v.workload = workloads_.labels(c.workload);
  });
  AgentHealth& h = s->health;
  h.events = rules_.records_by_type();
  h.evicted_full = connections_.evicted_full();
  h.evicted_idle = connections_.evicted_idle();
  h.max_connections = config_.max_connections;
  h.series_budget = flows_.limits().max_series;
  h.flow_cap = flows_.limits().max_flows;
  h.stage = flows_.stage();
  h.churn_threshold = flows_.limits().churn_new_flows_per_minute;
  h.churn_breaker_tripped = flows_.churn_breaker_tripped();
  h.churn_trips = flows_.churn_trips_total();
  h.new_flow_keys = flows_.new_flow_keys_total();
  h.folded_total = flows_.folded_total();
  h.workload_overflows = workloads_.overflows();
  return s;
}

AggregatorState Aggregator::save() const {
  AggregatorState s;
  s.events = rules_.records_by_type();
  s.evicted_full = connections_.evicted_full();
  s.evicted_idle = connections_.evicted_idle();
  s.workloads = workloads_.save();
  s.flows = flows_.save();
  std::unordered_map<const Flow*, uint32_t> flow_index;  // save() lists flows in for_each order
  flows_.for_each([&](const Flow& f) { flow_index.emplace(&f, static_cast<uint32_t>(flow_index.size())); });
  s.connections.reserve(connections_.size());
  connections_.for_each_row(
      [&](const ConnectionRow& row, const Flow& flow) { s.connections.push_back({flow_index.at(&flow), row}); });
  return s;
}

void Aggregator::restore(const AggregatorState& saved) {
  auto workload_id = [&](uint32_t old) -> uint32_t {
    if (old <= WorkloadRegistry::kOther || old >= saved.workloads.labels.size())
      return std::min(old, WorkloadRegistry::kOther);
    return workloads_.intern(saved.workloads.labels[old]);
  };
  FlowTable::State flows = saved.flows;
  for (Flow& f : flows.flows) f.key.workload = workload_id(f.key.workload);
  for (FlowTable::SavedService& v : flows.services) v.key.workload = workload_id(v.key.workload);
  std::vector<Flow*> restored = flows_.restore(flows);
  for (const auto& [flow, row] : saved.connections) {
    if (flow >= restored.size()) continue;
    ConnectionRow r = row;
    r.workload = workload_id(r.workload);
    connections_.restore(r, *restored[flow]);
  }
  rules_.add_records_by_type(saved.events);
  connections_.add_evicted(saved.evicted_full, saved.evicted_idle);
  workloads_.restore(saved.workloads);
}

}  // namespace netwatch::aggregate
