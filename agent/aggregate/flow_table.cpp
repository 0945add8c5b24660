#include "aggregate/flow_table.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace netwatch::aggregate {

std::string_view connect_result_name(ConnectResult r) {
  switch (r) {
    case ConnectResult::ok: return "ok";
    case ConnectResult::refused: return "refused";
    case ConnectResult::timeout: return "timeout";
    case ConnectResult::reset: return "reset";
    case ConnectResult::closed_before_established: return "closed_before_established";
    case ConnectResult::error: break;
  }
  return "error";
}

ConnectResult connect_result_of(int error) {
  switch (error) {
    case ECONNREFUSED: return ConnectResult::refused;
    case ETIMEDOUT: return ConnectResult::timeout;
    case ECONNRESET: return ConnectResult::reset;
    case 0: return ConnectResult::closed_before_established;
    default: return ConnectResult::error;
  }
}

FlowKey FlowKey::folded(FoldLevel level) const {
  FlowKey k = *this;
  if (level > k.fold) k.fold = level;
  if (k.fold >= FoldLevel::peer) k.peer = event::IpAddress{};
  if (k.fold >= FoldLevel::port) k.port = 0;
  if (k.fold >= FoldLevel::workload) k.workload = 0;
  return k;
}

size_t FlowKeyHash::operator()(const FlowKey& k) const {
  uint64_t a, b;
  std::memcpy(&a, k.peer.bytes.data(), 8);
  std::memcpy(&b, k.peer.bytes.data() + 8, 8);
  uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ b;
  h ^= (uint64_t(k.port) << 32 | uint64_t(k.direction) << 24 | uint64_t(k.fold) << 16 | k.peer.family) +
       0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= uint64_t(k.workload) * 0xff51afd7ed558ccdULL;
  return h ^ (h >> 29);
}

size_t FlowTable::limit(FoldLevel level) const {
  switch (level) {
    case FoldLevel::none: return budget_ * 8 / 10;
    case FoldLevel::peer: return budget_ * 9 / 10;
    case FoldLevel::port: return budget_;
    case FoldLevel::workload: break;
  }
  return SIZE_MAX;
}

Flow& FlowTable::resolve(const FlowKey& key, uint64_t now_ns) {
  // Walk from full detail to the coarsest fold: the first key that exists, or that its
  // level's share of the budget still has room for, takes the counts. The coarsest level is
  // always created, so no count is ever dropped; at most one such flow exists per direction.
  for (int level = static_cast<int>(key.fold); level <= static_cast<int>(FoldLevel::workload); ++level) {
    FlowKey k = key.folded(static_cast<FoldLevel>(level));
    auto it = flows_.find(k);
    if (it == flows_.end()) {
      if (flows_.size() >= limit(k.fold)) continue;
      it = flows_.emplace(k, Flow{k, {}}).first;
      ++per_level_[level];
    }
    if (level != static_cast<int>(key.fold)) ++folded_total_;
    it->second.stats.last_update_ns = now_ns;
    return it->second;
  }
  __builtin_unreachable();
}

size_t FlowTable::expire_idle(uint64_t now_ns, uint64_t idle_ns) {
  size_t removed = 0;
  for (auto it = flows_.begin(); it != flows_.end();) {
    const FlowStats& s = it->second.stats;
    if (s.active <= 0 && now_ns - s.last_update_ns >= idle_ns) {
      --per_level_[static_cast<int>(it->first.fold)];
      it = flows_.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

FoldLevel FlowTable::stage() const {
  for (int level = 3; level > 0; --level)
    if (per_level_[level]) return static_cast<FoldLevel>(level);
  return FoldLevel::none;
}

FlowTable::State FlowTable::save() const {
  State s;
  s.flows.reserve(flows_.size());
  for_each([&](const Flow& f) { s.flows.push_back(f); });
  s.folded_total = folded_total_;
  return s;
}

std::vector<Flow*> FlowTable::restore(const State& saved) {
  std::vector<Flow*> restored;
  restored.reserve(saved.flows.size());
  for (const Flow& flow : saved.flows) {
    const FlowStats& from = flow.stats;
    Flow& into = resolve(flow.key, from.last_update_ns);
    FlowStats& to = into.stats;
    for (size_t r = 0; r < to.connects.size(); ++r) to.connects[r] += from.connects[r];
    to.connect_latency.add(from.connect_latency);
    to.rtt.add(from.rtt);
    to.retransmits += from.retransmits;
    to.segments_sent += from.segments_sent;
    to.bytes_sent += from.bytes_sent;
    to.bytes_received += from.bytes_received;
    to.last_update_ns = std::max(to.last_update_ns, from.last_update_ns);
    restored.push_back(&into);
  }
  folded_total_ += saved.folded_total;
  return restored;
}

}  // namespace netwatch::aggregate
