// One connection as plain data: what a snapshot lists (the JSON view) and what a checkpoint
// saves. The aggregation's hot slot (Connection, agent/aggregate/connection_table.h) stays private to it;
// ConnectionTable converts between the two.
#pragma once

#include <array>
#include <cstdint>

#include "event/event.h"

namespace netwatch::aggregate {

struct ConnectionRow {
  uint64_t cookie = 0;
  event::Direction direction = event::Direction::unknown;
  uint8_t state = 0;  // TCP state (TCP_ESTABLISHED = 1, ...) at the last event
  uint32_t pid = 0;
  std::array<char, 16> comm{};
  event::IpAddress local, remote;
  uint16_t local_port = 0, remote_port = 0;
  uint64_t cgroup_id = 0;
  uint32_t workload = 0;  // WorkloadRegistry id
  uint64_t first_ns = 0;  // monotonic: when the connection started, or was first seen
  uint64_t last_ns = 0;   // monotonic: its last event
  uint64_t connect_latency_ns = 0;
  uint32_t srtt_us = 0, rttvar_us = 0, snd_cwnd = 0;
  // Counted since netwatch saw the connection start (or since it was first seen).
  uint64_t retransmits = 0, segs_out = 0, bytes_sent = 0, bytes_received = 0;
  // The kernel's cumulative counters as of the last event (its 32-bit ones as the kernel has
  // them), so that a restored connection's next event counts only what is new.
  struct Kernel {
    uint32_t retransmits = 0, segs_out = 0;
    uint64_t bytes_sent = 0, bytes_received = 0;
  } kernel;
};

}  // namespace netwatch::aggregate
