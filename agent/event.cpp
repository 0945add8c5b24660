#include "agent/event.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>

extern "C" {
#include <linux/types.h>
#include "netwatch.h"
}

namespace netwatch {

static_assert(sizeof(nw_event) == NW_EVENT_SIZE, "event ABI size changed: update NW_EVENT_SIZE");
static_assert(NW_EV_TYPE_COUNT == kEventTypeCount);

namespace {

constexpr std::array<std::string_view, kEventTypeCount> kTypeNames = {
    "", "connect", "accept", "connect_failed", "retransmit", "rtt", "close"};

bool is_v4_mapped(const uint8_t* a) {
  static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, prefix, sizeof(prefix)) == 0;
}

IpAddress make_address(uint16_t family, const uint8_t* raw) {
  IpAddress addr;
  if (family == AF_INET6 && is_v4_mapped(raw)) {
    addr.family = 4;
    std::memcpy(addr.bytes.data(), raw + 12, 4);
  } else if (family == AF_INET6) {
    addr.family = 6;
    std::memcpy(addr.bytes.data(), raw, 16);
  } else {
    addr.family = 4;
    std::memcpy(addr.bytes.data(), raw, 4);
  }
  return addr;
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
  if (size != sizeof(nw_event)) return std::nullopt;
  nw_event raw;
  std::memcpy(&raw, data, sizeof(raw));  // ring-buffer records are only 8-byte aligned
  if (raw.type < NW_EV_CONNECT || raw.type >= NW_EV_TYPE_COUNT) return std::nullopt;
  if (raw.family != AF_INET && raw.family != AF_INET6) return std::nullopt;
  if (raw.direction > NW_DIR_INBOUND) return std::nullopt;

  Event ev;
  ev.type = static_cast<EventType>(raw.type);
  ev.direction = static_cast<Direction>(raw.direction);
  ev.ts_ns = raw.ts_ns;
  ev.cookie = raw.cookie;
  ev.cgroup_id = raw.cgroup_id;
  ev.netns_ino = raw.netns_ino;
  ev.pid = raw.pid;
  // Any process can name itself anything (prctl(PR_SET_NAME)): keep printable ASCII only, as
  // ps does, so no name can inject terminal escapes or break a JSON document.
  for (size_t i = 0; i < sizeof(raw.comm) && raw.comm[i]; ++i) {
    unsigned char c = static_cast<unsigned char>(raw.comm[i]);
    ev.comm[i] = c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  ev.comm.back() = '\0';
  ev.saddr = make_address(raw.family, raw.saddr);
  ev.daddr = make_address(raw.family, raw.daddr);
  ev.state = raw.state;
  ev.sport = raw.sport;
  ev.dport = raw.dport;
  ev.segs = raw.segs;
  ev.error = raw.error;
  ev.latency_ns = raw.latency_ns;
  ev.duration_ns = raw.duration_ns;
  ev.stats = TcpStats{raw.stats.srtt_us,     raw.stats.rttvar_us,  raw.stats.snd_cwnd,
                      raw.stats.total_retrans, raw.stats.segs_out, raw.stats.segs_in,
                      raw.stats.bytes_sent,  raw.stats.bytes_acked, raw.stats.bytes_received};
  return ev;
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
