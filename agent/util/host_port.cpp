#include "util/host_port.h"

#include <arpa/inet.h>

namespace netwatch::util {

std::optional<HostPort> parse_host_port(std::string_view text, uint16_t min_port, HostPortError* error) {
  auto bad = [&](HostPortError e) -> std::optional<HostPort> {
    if (error) *error = e;
    return std::nullopt;
  };
  HostPort hp;
  size_t colon;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad(HostPortError::unclosed_bracket);
    hp.host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad(HostPortError::no_port);
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad(HostPortError::no_port);
    hp.host = text.substr(0, colon);
    if (hp.host.find(':') != std::string::npos) return bad(HostPortError::unbracketed_ipv6);
  }
  if (hp.host.empty()) return bad(HostPortError::no_host);
  std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)
    return bad(HostPortError::port_out_of_range);
  unsigned long n = std::stoul(std::string(port));
  if (n < min_port || n > 65535) return bad(HostPortError::port_out_of_range);
  hp.port = static_cast<uint16_t>(n);
  return hp;
}

std::optional<ListenAddress> parse_listen_address(const std::string& text) {
  auto hp = parse_host_port(text, 0);
  if (!hp) return std::nullopt;
  // A bracketed host must be IPv6 ("[1.2.3.4]:80" is not an address), a bare one IPv4.
  bool bracketed = text.front() == '[';
  in6_addr a6;
  in_addr a4;
  if (bracketed ? inet_pton(AF_INET6, hp->host.c_str(), &a6) != 1 : inet_pton(AF_INET, hp->host.c_str(), &a4) != 1)
    return std::nullopt;
  return hp;
}

}  // namespace netwatch::util
