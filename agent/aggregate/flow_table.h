// Flows: what the metrics are about. A flow is (direction, peer address, service port,
// workload) -- the remote port for outbound connections, the local port for inbound ones,
// never the ephemeral port. The table enforces the series budget by folding detail away.
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
};

// Not noexcept, on purpose: libstdc++'s unordered_map then keeps each node's hash code, and a
// lookup no longer hashes every key it passes in the chain to find where its bucket ends (that
// was ~90 instructions of each connection's first event).
struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const;
};

struct FlowStats {
  std::array<uint64_t, kConnectResultCount> connects{};
  LatencyHistogram connect_latency;  // outbound SYN_SENT -> ESTABLISHED
  LatencyHistogram rtt;              // sampled smoothed RTT
  uint64_t retransmits = 0;          // segments
  uint64_t segments_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  int64_t active = 0;  // live tracked connections
  // Monotonic: the last count, connect or connection seen leaving. Read only once active is 0
  // (expiry), so a live connection's events reach it when the connection leaves.
  uint64_t last_update_ns = 0;
};

struct Flow {
  FlowKey key;
  FlowStats stats;
};

class FlowTable {
 public:
  // budget: the most flows exported at once. Full-detail flows may fill 80% of it; flows
  // with the peer folded ("other", port kept) up to 90%; with the port folded too up to
  // 100%; beyond that everything of a direction lands in one catch-all flow, so the hard
  // cap is budget + 3 (one per direction).
  explicit FlowTable(size_t budget) : budget_(budget) {}

  // The flow a key's counts go to: its own, or, with the budget reached, the least folded
  // existing-or-creatable key. References stay valid while the flow has active connections.
  Flow& resolve(const FlowKey& key, uint64_t now_ns);
  // Drops flows without live connections that saw no update for idle_ns. Returns how many.
  size_t expire_idle(uint64_t now_ns, uint64_t idle_ns);

  // The deepest fold level of any existing flow: 0 while every flow has full detail.
  FoldLevel stage() const;
  uint64_t folded_total() const { return folded_total_; }  // keys that did not get their own flow
  size_t size() const { return flows_.size(); }
  size_t budget() const { return budget_; }

  template <class F>
  void for_each(F&& f) const {
    for (const auto& [key, flow] : flows_) f(flow);
  }

  // Plain data for a checkpoint (agent/persist/checkpoint.cpp).
  struct State {
    std::vector<Flow> flows;  // in for_each order
    uint64_t folded_total = 0;
  };
  State save() const;
  // Adds saved flows' counts (not their active connections) into this table, each to the flow its
  // key resolves to here (folded again if this budget is smaller). Returns those flows, in order.
  std::vector<Flow*> restore(const State& saved);

 private:
  size_t limit(FoldLevel level) const;  // table size up to which a new key of level may be added

  size_t budget_;
  std::unordered_map<FlowKey, Flow, FlowKeyHash> flows_;
  std::array<size_t, 4> per_level_{};  // existing flows by fold level
  uint64_t folded_total_ = 0;
};

}  // namespace netwatch::aggregate
