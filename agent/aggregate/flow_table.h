// Flows: what the metrics are about. A flow is (direction, peer address, service port,
// workload) -- the remote port for outbound connections, the local port for inbound ones,
// never the ephemeral port. A service is a flow without its peer: the latency histograms are
// kept per service, the counters per flow. The table enforces the series budget by folding
// detail away, and folds new detail early while new flows churn (the churn breaker).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "event/event.h"
#include "aggregate/latency_histogram.h"

namespace netwatch::aggregate {

// A failed connect by its sk_err; closed_before_established: sk_err 0, the application closed the
// socket (or it was shut down) while the handshake was still under way. Append only: the order
// is the checkpoint's (persist/checkpoint.cpp stores the counts positionally).
enum class ConnectResult : uint8_t { ok = 0, refused, timeout, reset, error, closed_before_established };
inline constexpr int kConnectResultCount = 6;
std::string_view connect_result_name(ConnectResult r);
ConnectResult connect_result_of(int error);  // errno of a failed connect

// How much detail a flow key keeps. Stages of the series budget, in order.
enum class FoldLevel : uint8_t { none = 0, peer = 1, port = 2, workload = 3 };

struct FlowKey {
  event::Direction direction = event::Direction::unknown;
  FoldLevel fold = FoldLevel::none;  // peer is "other" from FoldLevel::peer, port from ::port, ...
  uint16_t port = 0;
  uint32_t workload = 0;  // id from WorkloadRegistry; 0 = host process
  event::IpAddress peer;

  bool operator==(const FlowKey&) const = default;
  FlowKey folded(FoldLevel level) const;  // this key with detail removed up to level
  FlowKey service() const { return folded(FoldLevel::peer); }  // the key of this flow's service
};

// Not noexcept, on purpose: libstdc++'s unordered_map then keeps each node's hash code, and a
// lookup no longer hashes every key it passes in the chain to find where its bucket ends (that
// was ~90 instructions of each connection's first event).
struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const;
};

struct FlowStats {
  std::array<uint64_t, kConnectResultCount> connects{};  // through FlowTable::count_connect()
  LatencyHistogram connect_latency;                      // outbound SYN_SENT -> ESTABLISHED
  LatencyHistogram rtt;                                  // sampled smoothed RTT
  uint64_t retransmits = 0;                              // segments
  uint64_t segments_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  int64_t active = 0;  // live tracked connections
  // Monotonic: the last count, connect or connection seen leaving. Read only once active is 0
  // (expiry), so a live connection's events reach it when the connection leaves.
  uint64_t last_update_ns = 0;
};

// The latency histograms of a service: /metrics exports them per service, as per flow they would
// cost 21 series per histogram for every peer. Flows keep their own (for the JSON snapshot and
// netwatch top, which cost no series); a service's are the sum of its flows' and of those that
// expired (retired), so they never go backwards while the service exists.
struct ServiceStats {
  LatencyHistogram connect_latency;
  LatencyHistogram rtt;
  void add(const FlowStats& flow) {
    connect_latency.merge(flow.connect_latency);
    rtt.merge(flow.rtt);
  }
  void add(const ServiceStats& other) {
    connect_latency.merge(other.connect_latency);
    rtt.merge(other.rtt);
  }
};

struct Service {
  FlowKey key;  // a flow key with the peer folded (FlowKey::service())
  ServiceStats retired;  // of its flows that expired
  uint32_t flows = 0;    // flows that point here; the service leaves with the last one
};

struct Flow {
  FlowKey key;
  FlowStats stats;
  Service* service = nullptr;  // never null in a table; stable while the flow exists
  uint8_t connect_series = 0;  // connect results counted: their series are in the budget
};

// Series each flow and service exports, as /metrics writes them (serve/metrics_render.cpp).
inline constexpr size_t kFlowCounterSeries = 5;  // retransmits, segments, active, bytes sent and received
inline constexpr size_t kHistogramSeries = kLatencyBucketsSeconds.size() + 3;  // buckets, +Inf, _sum, _count
// A service: the RTT histogram, and the connect-latency one unless it is inbound only.
size_t service_series(event::Direction direction);
// Series the agent's own families (health, HTTP) may use: the budget keeps them free.
// tests/unit/serve/metrics_render_test.cpp checks they fit.
inline constexpr size_t kAgentSeriesReserve = 256;
// What the catch-all flows (one per direction) and their services may take at most: always
// kept free, so the coarsest fold can always be created and no count is ever dropped.
inline constexpr size_t kCatchAllSeriesReserve = 3 * (kFlowCounterSeries + kConnectResultCount + 2 * kHistogramSeries);
// The smallest --max-series: the reserves plus room for some detail.
inline constexpr size_t kMinSeriesBudget = 1000;

struct FlowTableLimits {
  size_t max_series = 10000;  // everything /metrics exports, the agent's own families included
  size_t max_flows = 0;       // also at most this many flows (the old --max-flows); 0: no such cap
  // The churn breaker: when more full-detail flow keys than this are new within a minute, new
  // keys fold their peer; detail comes back once a minute sees fewer than half as many. 0: off.
  // It counts from a minute after the agent's first event or expiry tick (what is there at start
  // is not churn), and keys restored from a checkpoint are not new.
  size_t churn_new_flows_per_minute = 300;
};

class FlowTable {
 public:
  // The series budget, in stages: new full-detail flows may fill 80% of the series the flows may
  // use (max_series less the reserves above); flows with the peer folded ("other", port kept) up
  // to 90%; with the port folded too up to 100%; beyond that everything of a direction lands in
  // one catch-all flow, whose series are reserved. A new key's cost is projected as its counters,
  // one connect result and, if its service is new, the service's histograms. max_flows, when
  // set, applies the same stages to the number of flows.
  explicit FlowTable(const FlowTableLimits& limits);

  // The flow a key's counts go to: its own, or, with the budget reached or the churn breaker
  // tripped, the least folded existing-or-creatable key. References stay valid while the flow
  // has active connections.
  Flow& resolve(const FlowKey& key, uint64_t now_ns);
  // Counts a connect result on a flow. A result the flow has not seen before adds a series; past
  // the budget it is counted on the direction's catch-all flow instead (exact, less detail).
  void count_connect(Flow& flow, ConnectResult result, uint64_t n = 1);
  // Drops flows without live connections that saw no update for idle_ns, and services without
  // flows; moves the churn breaker's clock. Returns how many flows.
  size_t expire_idle(uint64_t now_ns, uint64_t idle_ns);

  // The deepest fold level of any existing flow: 0 while every flow has full detail.
  FoldLevel stage() const;
  uint64_t folded_total() const { return folded_total_; }  // keys and counts that did not get their own flow
  size_t size() const { return flows_.size(); }
  size_t services() const { return services_.size(); }
  // Series of the flow and service families as projected: what /metrics writes for them, plus
  // one for each flow that has no connect result yet (the projection holds one for every flow).
  size_t series() const { return series_; }
  // The flows' share of max_series: what series() may reach (the catch-alls' reserve aside).
  size_t flow_series_budget() const { return flow_series_budget_; }
  const FlowTableLimits& limits() const { return limits_; }
  bool churn_breaker_tripped() const { return churn_.tripped; }
  uint64_t churn_trips_total() const { return churn_.trips; }
  uint64_t new_flow_keys_total() const { return churn_.new_keys_total; }

  template <class F>
  void for_each(F&& f) const {
    for (const auto& [key, flow] : flows_) f(flow);
  }
  template <class F>
  void for_each_service(F&& f) const {
    for (const auto& [key, service] : services_) f(service);
  }

  // Every service's histograms: its retired ones plus its flows'. f(key, stats).
  template <class F>
  void for_each_service_stats(F&& f) const;

  // Plain data for a checkpoint (agent/persist/checkpoint.cpp).
  struct SavedService {
    FlowKey key;
    ServiceStats retired;
  };
  struct State {
    std::vector<Flow> flows;  // in for_each order; service pointers are not kept
    std::vector<SavedService> services;
    uint64_t folded_total = 0;
    uint64_t new_flow_keys_total = 0, churn_trips = 0;
  };
  State save() const;
  // Adds saved flows' counts (not their active connections) into this table, each to the flow its
  // key resolves to here (folded again if this budget is smaller), and the saved services'
  // retired histograms to the service of that flow. Returns the flows, in order.
  std::vector<Flow*> restore(const State& saved);

 private:
  // Whether a new key of this level and projected series cost may be added now.
  bool fits(FoldLevel level, size_t cost) const;
  Flow& create(const FlowKey& key);
  // The churn breaker: counts a key not seen in this or the previous minute as new (and trips the
  // breaker past the threshold); moves its clock.
  void count_if_new(const FlowKey& key, uint64_t now_ns);
  bool remember_key(const FlowKey& key);  // marks the key seen; whether it was already
  void advance_churn_clock(uint64_t now_ns);
  size_t seen_fill() const;  // bits set in the memory of seen keys (this minute's or the last's)

  FlowTableLimits limits_;
  size_t flow_series_budget_;  // max_series less the reserves
  std::unordered_map<FlowKey, Flow, FlowKeyHash> flows_;
  std::unordered_map<FlowKey, Service, FlowKeyHash> services_;
  std::array<size_t, 4> per_level_{};  // existing flows by fold level
  size_t series_ = 0;                  // of flows and services, catch-alls included
  uint64_t folded_total_ = 0;
  bool restoring_ = false;  // restore() is resolving a checkpoint's keys

  // New full-detail keys per minute, in six 10 s slots. A key is new when it has no flow and was
  // not seen in this or the previous minute: two bitmaps of key hashes, swapped each minute,
  // remember (approximately, in bounded memory) which keys were seen.
  struct Churn {
    static constexpr uint64_t kSlotNs = 10'000'000'000ULL;
    static constexpr size_t kSlots = 6;
    static constexpr size_t kBits = 1 << 16;
    std::array<uint32_t, kSlots> new_keys{};
    uint64_t slot_start_ns = 0;  // 0: no event yet
    uint64_t armed_ns = 0;       // a minute after the first event: the breaker counts from then
    size_t slot = 0;
    size_t slots_since_swap = 0;
    std::vector<uint64_t> seen, seen_before;  // kBits each
    bool tripped = false;
    uint64_t trips = 0;
    uint64_t new_keys_total = 0;
    size_t last_minute() const;
  } churn_;
};

template <class F>
void FlowTable::for_each_service_stats(F&& f) const {
  std::unordered_map<const Service*, ServiceStats> sums;
  sums.reserve(services_.size());
  for (const auto& [key, service] : services_) sums.emplace(&service, service.retired);
  for (const auto& [key, flow] : flows_) sums[flow.service].add(flow.stats);
  for (const auto& [service, stats] : sums) f(service->key, stats);
}

}  // namespace netwatch::aggregate
