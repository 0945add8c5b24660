#include "agent/event.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <type_traits>

extern "C" {
#include <linux/types.h>
#include "netwatch.h"
}

namespace netwatch {

static_assert(sizeof(nw_event) == NW_EVENT_SIZE, "event ABI size changed: update NW_EVENT_SIZE");
static_assert(NW_EV_TYPE_COUNT == kEventTypeCount);
static_assert(sizeof(TcpStats) == sizeof(nw_tcp_stats) && offsetof(TcpStats, srtt_us) == offsetof(nw_tcp_stats, srtt_us) &&
              offsetof(TcpStats, rttvar_us) == offsetof(nw_tcp_stats, rttvar_us) &&
              offsetof(TcpStats, snd_cwnd) == offsetof(nw_tcp_stats, snd_cwnd) &&
              offsetof(TcpStats, total_retrans) == offsetof(nw_tcp_stats, total_retrans) &&
              offsetof(TcpStats, segs_out) == offsetof(nw_tcp_stats, segs_out) &&
              offsetof(TcpStats, segs_in) == offsetof(nw_tcp_stats, segs_in) &&
              offsetof(TcpStats, bytes_sent) == offsetof(nw_tcp_stats, bytes_sent) &&
              offsetof(TcpStats, bytes_acked) == offsetof(nw_tcp_stats, bytes_acked) &&
              offsetof(TcpStats, bytes_received) == offsetof(nw_tcp_stats, bytes_received),
              "TcpStats must mirror struct nw_tcp_stats: decode_event copies one into the other");
static_assert(std::is_trivially_copyable_v<TcpStats>);

namespace {

constexpr std::array<std::string_view, kEventTypeCount> kTypeNames = {
    "", "connect", "accept", "connect_failed", "retransmit", "rtt", "close"};

bool is_v4_mapped(const uint8_t* a) {
  static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, prefix, sizeof(prefix)) == 0;
}

// Any process can name itself anything (prctl(PR_SET_NAME)): keep printable ASCII only, as ps
// does, so no name can inject terminal escapes or break a JSON document. The name ends at its
// first NUL; the last byte is always one.
void decode_comm(const uint8_t* raw, std::array<char, 16>& comm) {
  comm = {};
  for (size_t i = 0; i + 1 < comm.size() && raw[i]; ++i)
    comm[i] = raw[i] >= 0x20 && raw[i] < 0x7f ? static_cast<char>(raw[i]) : '?';
}

void decode_address(uint8_t family, const uint8_t* raw, IpAddress& addr) {
  if (family == AF_INET6 && !is_v4_mapped(raw)) {
    addr.family = 6;
    std::memcpy(addr.bytes.data(), raw, 16);
    return;
  }
  addr.family = 4;
  addr.bytes = {};
  std::memcpy(addr.bytes.data(), family == AF_INET6 ? raw + 12 : raw, 4);
}

}  // namespace

std::string_view event_type_name(EventType type) {
  auto i = static_cast<size_t>(type);
  return i < kTypeNames.size() ? kTypeNames[i] : "unknown";
}

std::optional<EventType> parse_event_type(std::string_view name) {
  for (size_t i = 1; i < kTypeNames.size(); ++i)
    if (kTypeNames[i] == name) return static_cast<EventType>(i);
  return std::nullopt;
}

std::string_view direction_name(Direction direction) {
  switch (direction) {
    case Direction::outbound: return "outbound";
    case Direction::inbound: return "inbound";
    case Direction::unknown: break;
  }
  return "unknown";
}

std::string_view tcp_state_name(uint8_t state) {
  static constexpr std::array<std::string_view, 14> names = {
      "UNKNOWN",  "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
      "CLOSE",    "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",   "NEW_SYN_RECV", "BOUND_INACTIVE"};
  return state < names.size() ? names[state] : "UNKNOWN";
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family == 6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf));
  return buf;
}

std::string_view Event::comm_view() const { return {comm.data(), strnlen(comm.data(), comm.size())}; }

std::optional<Event> decode_event(const void* data, size_t size) {
  Event ev;
  if (!decode_event(data, size, ev)) return std::nullopt;
  return ev;
}

bool decode_event(const void* data, size_t size, Event& ev) {
  if (size != sizeof(nw_event)) return false;
  // Ring-buffer records are only 8-byte aligned, so fields are read with memcpy, each on its own:
  // no copy of the whole record first.
  auto* raw = static_cast<const uint8_t*>(data);
  auto field = [raw](auto& to, size_t offset) { std::memcpy(&to, raw + offset, sizeof(to)); };
  uint8_t type, family, direction;
  field(type, offsetof(nw_event, type));
  field(family, offsetof(nw_event, family));
  field(direction, offsetof(nw_event, direction));
  if (type < NW_EV_CONNECT || type >= NW_EV_TYPE_COUNT) return false;
  if (family != AF_INET && family != AF_INET6) return false;
  if (direction > NW_DIR_INBOUND) return false;

  ev.type = static_cast<EventType>(type);
  ev.direction = static_cast<Direction>(direction);
  field(ev.ts_ns, offsetof(nw_event, ts_ns));
  field(ev.cookie, offsetof(nw_event, cookie));
  field(ev.cgroup_id, offsetof(nw_event, cgroup_id));
  field(ev.netns_ino, offsetof(nw_event, netns_ino));
  field(ev.pid, offsetof(nw_event, pid));
  decode_comm(raw + offsetof(nw_event, comm), ev.comm);
  decode_address(family, raw + offsetof(nw_event, saddr), ev.saddr);
  decode_address(family, raw + offsetof(nw_event, daddr), ev.daddr);
  field(ev.state, offsetof(nw_event, state));
  field(ev.sport, offsetof(nw_event, sport));
  field(ev.dport, offsetof(nw_event, dport));
  field(ev.segs, offsetof(nw_event, segs));
  field(ev.error, offsetof(nw_event, error));
  field(ev.latency_ns, offsetof(nw_event, latency_ns));
  field(ev.duration_ns, offsetof(nw_event, duration_ns));
  // TcpStats mirrors struct nw_tcp_stats field for field (static_asserts above).
  field(ev.stats, offsetof(nw_event, stats));
  return true;
}

std::string errno_name(int error) {
  switch (error) {
    case 0: return "ECONNABORTED";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNRESET: return "ECONNRESET";
    case ECONNABORTED: return "ECONNABORTED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTDOWN: return "EHOSTDOWN";
    case ENETDOWN: return "ENETDOWN";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EPIPE: return "EPIPE";
    case EPROTO: return "EPROTO";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    default: return "E" + std::to_string(error);
  }
}

uint64_t monotonic_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1'000'000'000ULL + t.tv_nsec;
}

WallClock::WallClock() {
  timespec mono{}, real{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  auto ns = [](const timespec& t) { return uint64_t(t.tv_sec) * 1'000'000'000ULL + t.tv_nsec; };
  offset_ns_ = ns(real) - ns(mono);
}

}  // namespace netwatch
