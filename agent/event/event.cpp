#include "event/event.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "event/event_record.h"

namespace netwatch::event {
namespace {

constexpr std::array<std::string_view, kEventTypeCount> kTypeNames = {
    "", "connect", "accept", "connect_failed", "retransmit", "rtt", "close"};

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
    case Direction::outbound:
      return "outbound";
    case Direction::inbound:
      return "inbound";
    case Direction::unknown:
      break;
  }
  return "unknown";
}

std::string_view tcp_state_name(uint8_t state) {
  static constexpr std::array<std::string_view, 14> names = {
      "UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",    "TIME_WAIT",
      "CLOSE",   "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",   "NEW_SYN_RECV", "BOUND_INACTIVE"};
  return state < names.size() ? names[state] : "UNKNOWN";
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family == 6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf));
  return buf;
}

std::string_view Event::comm_view() const {
  return {comm.data(), strnlen(comm.data(), comm.size())};
}

std::optional<Event> decode_event(const void* data, size_t size) {
  Event ev;
  if (!decode_event(data, size, ev)) return std::nullopt;
  return ev;
}

bool decode_event(const void* data, size_t size, Event& ev) {
  // Any bytes, at any alignment (the perf buffer's records are 4-byte aligned): a copy to check.
  if (size != sizeof(nw_event)) return false;
  nw_event raw;
  std::memcpy(&raw, data, sizeof(raw));
  if (!EventRecord::valid(&raw, size)) return false;
  EventRecord(&raw).decode(ev);
  return true;
}

std::string errno_name(int error) {
  switch (error) {
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case ECONNRESET:
      return "ECONNRESET";
    case ECONNABORTED:
      return "ECONNABORTED";
    case EHOSTUNREACH:
      return "EHOSTUNREACH";
    case ENETUNREACH:
      return "ENETUNREACH";
    case EHOSTDOWN:
      return "EHOSTDOWN";
    case ENETDOWN:
      return "ENETDOWN";
    case EADDRNOTAVAIL:
      return "EADDRNOTAVAIL";
    case EPIPE:
      return "EPIPE";
    case EPROTO:
      return "EPROTO";
    case EACCES:
      return "EACCES";
    case EPERM:
      return "EPERM";
    default:
      return "E" + std::to_string(error);
  }
}

std::string connect_failure_name(int error) {
  return error == 0 ? "closed_before_established" : errno_name(error);
}

}  // namespace netwatch::event
