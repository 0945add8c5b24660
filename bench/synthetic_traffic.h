// Synthetic kernel events for the userspace benchmarks: raw records laid out as struct nw_event
// (bpf/netwatch.h), byte for byte what the ring buffer hands the reader, for a node with a fixed
// number of live connections spread over a fixed number of flows. Deterministic for a seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "aggregate/aggregator.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

namespace netwatch::bench {

// The steady mix, in percent of draws; the rest of the draws are RTT samples too. A close_open
// draw is two records: a close and, at once, the connect (or accept) of a new connection, so the
// number of live connections stays constant. Defaults: of every 103 records, 93 rtt, 4
// retransmit, 3 close, 3 connect/accept.
struct EventMix {
  unsigned rtt = 90;  // the ACK path's periodic samples: most events on a busy node
  unsigned retransmit = 4;
  unsigned close_open = 3;
};

class SyntheticTraffic {
 public:
  SyntheticTraffic(size_t live_connections, size_t flows, uint64_t seed = 1, EventMix mix = {});

  size_t live() const { return slots_.size(); }
  // The connect/accept records that open every live connection (set-up: not part of a measure).
  std::vector<nw_event> opening();
  // Appends n records of the steady mix to out.
  void next(size_t n, std::vector<nw_event>& out);

 private:
  struct Slot {  // one live connection and the kernel counters it has reported
    uint64_t cookie = 0;
    uint32_t flow = 0;
    uint16_t sport = 0;
    uint32_t segs_out = 0, total_retrans = 0;
    uint64_t bytes_sent = 0, bytes_received = 0;
  };
  struct FlowShape {
    uint8_t direction;
    uint32_t peer;  // IPv4, network order
    uint16_t service_port;
    uint32_t base_rtt_us;
  };
  nw_event record(const Slot& slot, uint8_t type);
  void open(Slot& slot);

  EventMix mix_;
  std::mt19937_64 rng_;
  std::vector<FlowShape> flows_;
  std::vector<Slot> slots_;
  uint64_t next_cookie_ = 1;
  uint64_t now_ns_ = 1'000'000'000;
};

// A real aggregator (capacity live + 16) after `live` connections over `flows` flows opened and
// `records` records of the steady mix, through the real reader: what render and checkpoint
// benchmarks measure on.
std::unique_ptr<aggregate::Aggregator> aggregate_synthetic(size_t live, size_t flows, size_t records);

}  // namespace netwatch::bench
