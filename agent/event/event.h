// The decoded form of one kernel event (bpf/netwatch.h), and the decoder that checks
// raw ring-buffer bytes before anything trusts them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/clock.h"

namespace netwatch::event {

enum class EventType : uint8_t {
  connect = 1,
  accept = 2,
  connect_failed = 3,
  retransmit = 4,
  rtt = 5,
  close = 6,
};
inline constexpr int kEventTypeCount = 7;  // indexable by the enum's value

enum class Direction : uint8_t { unknown = 0, outbound = 1, inbound = 2 };

std::string_view event_type_name(EventType type);
std::optional<EventType> parse_event_type(std::string_view name);
std::string_view direction_name(Direction direction);
// "ESTABLISHED", "SYN_SENT", ... as ss prints them, for the kernel's TCP state numbers.
std::string_view tcp_state_name(uint8_t state);
inline constexpr uint8_t kTcpEstablished = 1;
inline constexpr uint8_t kTcpSynSent = 2;

struct IpAddress {
  uint8_t family = 4;               // 4 or 6
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes

  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

// TCP_INFO-equivalent counters of the socket when the event was taken.
struct TcpStats {
  uint32_t srtt_us = 0;
  uint32_t rttvar_us = 0;
  uint32_t snd_cwnd = 0;
  uint32_t total_retrans = 0;
  uint32_t segs_out = 0;
  uint32_t segs_in = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_acked = 0;
  uint64_t bytes_received = 0;

  bool operator==(const TcpStats&) const = default;
};

struct Event {
  EventType type = EventType::connect;
  Direction direction = Direction::unknown;
  uint64_t ts_ns = 0;  // CLOCK_MONOTONIC, as the kernel stamped it
  uint64_t cookie = 0;
  uint64_t cgroup_id = 0;
  uint32_t netns_ino = 0;
  uint32_t pid = 0;
  std::array<char, 16> comm{};  // NUL-terminated
  IpAddress saddr;              // local end
  IpAddress daddr;              // remote end
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t state = 0;         // TCP state after the event (1 = ESTABLISHED ... 12 = NEW_SYN_RECV)
  uint32_t segs = 0;         // retransmit
  int32_t error = 0;         // connect_failed: positive errno, 0 = closed by the application
  uint64_t latency_ns = 0;   // connect, connect_failed: time since SYN_SENT
  uint64_t duration_ns = 0;  // close
  TcpStats stats;            // retransmit, rtt, close

  std::string_view comm_view() const;
  bool operator==(const Event&) const = default;
};

// Decodes one raw record. Returns nullopt for anything that is not a well-formed event:
// wrong size, unknown type, unknown family. IPv4-mapped IPv6 addresses come out as IPv4.
std::optional<Event> decode_event(const void* data, size_t size);
// The same into an existing Event (every field is written). False, with out unspecified, when the
// record is not well-formed. Both are EventRecord::valid() then EventRecord::decode().
bool decode_event(const void* data, size_t size, Event& out);

// "ECONNREFUSED" for 111; "E<number>" for anything unnamed.
std::string errno_name(int error);
// What a connect_failed event's error says: its errno name, or "closed_before_established" for
// 0 (no error: the application closed the socket before the handshake finished). Not
// ECONNABORTED, which is a real errno with another meaning (an aborted accept, a local abort).
std::string connect_failure_name(int error);

}  // namespace netwatch::event
