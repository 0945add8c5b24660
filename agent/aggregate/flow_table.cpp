#include "aggregate/flow_table.h"

#include <algorithm>
#include <bit>
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

size_t service_series(event::Direction direction) {
  return direction == event::Direction::inbound ? kHistogramSeries : 2 * kHistogramSeries;
}

FlowTable::FlowTable(const FlowTableLimits& limits)
    : limits_(limits),
      flow_series_budget_(limits.max_series > kAgentSeriesReserve + kCatchAllSeriesReserve
                              ? limits.max_series - kAgentSeriesReserve - kCatchAllSeriesReserve
                              : 0) {
  churn_.seen.assign(Churn::kBits / 64, 0);
  churn_.seen_before.assign(Churn::kBits / 64, 0);
}

bool FlowTable::fits(FoldLevel level, size_t cost) const {
  if (level == FoldLevel::workload) return true;  // the catch-all: reserved
  static constexpr size_t kTenths[] = {8, 9, 10};
  size_t tenths = kTenths[static_cast<int>(level)];
  if (series_ + cost > flow_series_budget_ * tenths / 10) return false;
  return limits_.max_flows == 0 || flows_.size() < limits_.max_flows * tenths / 10;
}

Flow& FlowTable::create(const FlowKey& key) {
  Flow& flow = flows_.emplace(key, Flow{key, {}}).first->second;
  ++per_level_[static_cast<int>(key.fold)];
  FlowKey sk = key.service();
  auto [it, inserted] = services_.try_emplace(sk, Service{sk, {}});
  if (inserted) series_ += service_series(key.direction);
  ++it->second.flows;
  flow.service = &it->second;
  // Its counters, and one connect result: nearly every flow has one, so the projection
  // holds it from the start (count_connect() adds only the second and later ones).
  series_ += kFlowCounterSeries + 1;
  flow.connect_series = 1;
  return flow;
}

Flow& FlowTable::resolve(const FlowKey& key, uint64_t now_ns) {
  // Walk from full detail to the coarsest fold: the first key that exists, or that its
  // level's share of the budget still has room for, takes the counts. The coarsest level is
  // always created, so no count is ever dropped; at most one such flow exists per direction.
  for (int level = static_cast<int>(key.fold); level <= static_cast<int>(FoldLevel::workload); ++level) {
    FlowKey k = key.folded(static_cast<FoldLevel>(level));
    auto it = flows_.find(k);
    Flow* flow;
    if (it != flows_.end()) {
      flow = &it->second;
    } else {
      if (k.fold == FoldLevel::none && !restoring_) {
        count_if_new(k, now_ns);
        // While the breaker is tripped no key gets a new full-detail flow: not a new one, nor one
        // seen a moment ago (folded then) coming back, nor one the bitmaps mistake for seen.
        if (churn_.tripped) continue;
      }
      bool new_service = !services_.contains(k.service());
      size_t cost = kFlowCounterSeries + 1 + (new_service ? service_series(k.direction) : 0);
      if (!fits(k.fold, cost)) continue;
      flow = &create(k);
    }
    if (level != static_cast<int>(key.fold)) ++folded_total_;
    flow->stats.last_update_ns = now_ns;
    return *flow;
  }
  __builtin_unreachable();
}

void FlowTable::count_connect(Flow& flow, ConnectResult result, uint64_t n) {
  uint64_t& count = flow.stats.connects[static_cast<int>(result)];
  if (count == 0 && n != 0) {
    if (flow.connect_series > 0) {
      --flow.connect_series;  // the result the projection held for it
    } else if (flow.key.fold != FoldLevel::workload && series_ + 1 > flow_series_budget_) {
      // Past the budget: to the least folded flow of this key that has this result's series
      // already (failures keep their workload and port as long as one does), else the catch-all.
      Flow* to = nullptr;
      for (int level = static_cast<int>(flow.key.fold) + 1; !to && level < 3; ++level) {
        auto it = flows_.find(flow.key.folded(static_cast<FoldLevel>(level)));
        if (it != flows_.end() && it->second.stats.connects[static_cast<int>(result)]) to = &it->second;
      }
      if (!to) to = &resolve(flow.key.folded(FoldLevel::workload), flow.stats.last_update_ns);
      ++folded_total_;
      count_connect(*to, result, n);
      return;
    } else {
      ++series_;
    }
  }
  count += n;
}

bool FlowTable::remember_key(const FlowKey& key) {
  size_t h = FlowKeyHash{}(key) % Churn::kBits;
  uint64_t bit = uint64_t{1} << (h % 64);
  bool seen = (churn_.seen[h / 64] | churn_.seen_before[h / 64]) & bit;
  churn_.seen[h / 64] |= bit;
  return seen;
}

void FlowTable::count_if_new(const FlowKey& key, uint64_t now_ns) {
  if (limits_.churn_new_flows_per_minute == 0) return;
  advance_churn_clock(now_ns);
  // What the agent finds in its first minute is the node as it was, not churn.
  if (remember_key(key) || now_ns < churn_.armed_ns) return;
  ++churn_.new_keys[churn_.slot];
  ++churn_.new_keys_total;
  if (!churn_.tripped && churn_.last_minute() > limits_.churn_new_flows_per_minute) {
    churn_.tripped = true;
    ++churn_.trips;
  }
}

size_t FlowTable::seen_fill() const {
  size_t bits = 0;
  for (size_t w = 0; w < churn_.seen.size(); ++w) bits += std::popcount(churn_.seen[w] | churn_.seen_before[w]);
  return bits;
}

size_t FlowTable::Churn::last_minute() const {
  size_t sum = 0;
  for (uint32_t n : new_keys) sum += n;
  return sum;
}

void FlowTable::advance_churn_clock(uint64_t now_ns) {
  Churn& c = churn_;
  if (c.slot_start_ns == 0) {
    c.slot_start_ns = now_ns;
    c.armed_ns = now_ns + Churn::kSlots * Churn::kSlotNs;
  }
  // Event timestamps may be a little older than the expiry clock: never step backwards.
  for (int steps = 0; now_ns >= c.slot_start_ns + Churn::kSlotNs; ++steps) {
    if (steps == static_cast<int>(2 * Churn::kSlots)) {  // two quiet minutes: nothing is recent
      c.new_keys.fill(0);
      std::fill(c.seen.begin(), c.seen.end(), 0);
      std::fill(c.seen_before.begin(), c.seen_before.end(), 0);
      c.slot_start_ns = now_ns;
      c.slots_since_swap = 0;
      c.tripped = false;
      break;
    }
    c.slot_start_ns += Churn::kSlotNs;
    c.slot = (c.slot + 1) % Churn::kSlots;
    c.new_keys[c.slot] = 0;
    if (++c.slots_since_swap == Churn::kSlots) {
      c.slots_since_swap = 0;
      c.seen_before.swap(c.seen);
      std::fill(c.seen.begin(), c.seen.end(), 0);
    }
    // Calm: fewer than half the threshold new in the last minute, and the memory of seen keys
    // not saturated (past half full it mistakes too many new keys for seen ones to count churn).
    if (c.tripped && c.last_minute() * 2 < limits_.churn_new_flows_per_minute && seen_fill() * 2 < Churn::kBits)
      c.tripped = false;
  }
}

size_t FlowTable::expire_idle(uint64_t now_ns, uint64_t idle_ns) {
  advance_churn_clock(now_ns);
  size_t removed = 0;
  for (auto it = flows_.begin(); it != flows_.end();) {
    Flow& flow = it->second;
    const FlowStats& s = flow.stats;
    if (s.active <= 0 && now_ns - s.last_update_ns >= idle_ns) {
      --per_level_[static_cast<int>(it->first.fold)];
      size_t results = 0;
      for (uint64_t n : s.connects) results += n != 0;
      series_ -= kFlowCounterSeries + std::max<size_t>(results, flow.connect_series);
      flow.service->retired.add(s);
      if (--flow.service->flows == 0) {
        series_ -= service_series(flow.service->key.direction);
        services_.erase(flow.service->key);
      }
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
  for_each([&](const Flow& f) {
    s.flows.push_back(f);
    s.flows.back().service = nullptr;
  });
  s.services.reserve(services_.size());
  for_each_service([&](const Service& v) { s.services.push_back({v.key, v.retired}); });
  s.folded_total = folded_total_;
  s.new_flow_keys_total = churn_.new_keys_total;
  s.churn_trips = churn_.trips;
  return s;
}

std::vector<Flow*> FlowTable::restore(const State& saved) {
  std::vector<Flow*> restored;
  restored.reserve(saved.flows.size());
  // Not churn: these flows existed before the restart. Remembered as seen, not counted, never
  // folded by the breaker (and a checkpoint's timestamps do not move its clock).
  restoring_ = true;
  for (const Flow& flow : saved.flows) {
    if (flow.key.fold == FoldLevel::none) remember_key(flow.key);
    const FlowStats& from = flow.stats;
    Flow& into = resolve(flow.key, from.last_update_ns);
    for (size_t r = 0; r < from.connects.size(); ++r)
      count_connect(into, static_cast<ConnectResult>(r), from.connects[r]);
    FlowStats& to = into.stats;
    to.connect_latency.merge(from.connect_latency);
    to.rtt.merge(from.rtt);
    to.retransmits += from.retransmits;
    to.segments_sent += from.segments_sent;
    to.bytes_sent += from.bytes_sent;
    to.bytes_received += from.bytes_received;
    to.last_update_ns = std::max(to.last_update_ns, from.last_update_ns);
    restored.push_back(&into);
  }
  restoring_ = false;
  for (const SavedService& from : saved.services) {
    // Its own service, or the folded one that took its flows' counts (a smaller budget).
    auto it = services_.find(from.key);
    for (int level = static_cast<int>(from.key.fold) + 1;
         it == services_.end() && level <= static_cast<int>(FoldLevel::workload); ++level)
      it = services_.find(from.key.folded(static_cast<FoldLevel>(level)));
    if (it == services_.end()) continue;  // none of its flows was saved: nothing refers to it
    it->second.retired.add(from.retired);
  }
  folded_total_ += saved.folded_total;
  churn_.new_keys_total += saved.new_flow_keys_total;
  churn_.trips += saved.churn_trips;
  return restored;
}

}  // namespace netwatch::aggregate
