// The agent's read-only HTTP endpoints: /metrics, /api/v1/connections, /healthz.
// Binding happens before the probes load, so a port in use fails fast with nothing attached.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "agent/snapshot.h"
#include "agent/util/host_port.h"

namespace httplib {
class Server;
}

namespace netwatch {

inline constexpr size_t kMaxConnectionsLimit = 100000;  // ?limit= on /api/v1/connections
inline constexpr size_t kDefaultConnectionsLimit = 10000;

// The ?limit= value of /api/v1/connections: an integer from 1 to kMaxConnectionsLimit.
std::optional<size_t> parse_connections_limit(const std::string& text);

// What GET /api/v1/connections asks for, from its decoded query parameters (httplib::Params).
// Parameters it does not know are ignored, as HTTP APIs do; a repeated limit is ambiguous and,
// like a malformed one, an error (nullopt).
struct ConnectionsQuery {
  size_t limit = kDefaultConnectionsLimit;
};
std::optional<ConnectionsQuery> parse_connections_query(const std::multimap<std::string, std::string>& params);

// Optional protection of the endpoints. /healthz stays open (it tells nothing) so kubelet probes
// need no credentials.
struct HttpSecurity {
  std::string tls_cert_file, tls_key_file;  // both or neither: HTTPS
  std::string basic_auth_user;              // with basic_auth_password: HTTP basic auth
  std::string basic_auth_password;
};

class HttpServer {
 public:
  // Binds; throws FatalError (exit 2) when the address or the TLS files are unusable.
  HttpServer(SnapshotStore& store, const ListenAddress& address, const HttpSecurity& security = {});
  ~HttpServer();
  void start();  // serves on a thread of its own
  void stop();
  uint16_t port() const { return port_; }

 private:
  SnapshotStore& store_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace netwatch
