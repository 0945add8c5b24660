// HOST:PORT, the one parser of it: the agent's --listen and top's --agent URL both use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netwatch::util {

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};

enum class HostPortError {
  unclosed_bracket,    // "[::1:80"
  no_port,             // "host", "[::1]"
  unbracketed_ipv6,    // "::1:80"
  no_host,             // ":80"
  port_out_of_range,   // not a number from min_port to 65535
};

// "HOST:PORT" or "[IPv6]:PORT", the host not checked further; nullopt (and *error) when malformed.
std::optional<HostPort> parse_host_port(std::string_view text, uint16_t min_port, HostPortError* error = nullptr);

// Where the agent listens: a numeric IPv4 or [IPv6] host (no name lookups), port 0 for any free one.
using ListenAddress = HostPort;

// "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0" (port 0: any free port). nullopt when malformed.
std::optional<ListenAddress> parse_listen_address(const std::string& text);

}  // namespace netwatch::util
