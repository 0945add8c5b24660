// The agent's read-only HTTP endpoints: /metrics, /api/v1/connections, /healthz.
// Binding happens before the probes load, so a port in use fails fast with nothing attached.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "serve/http_limits.h"
#include "serve/snapshot_store.h"
#include "util/host_port.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace netwatch::serve {

inline constexpr size_t kMaxConnectionsLimit = 100000;  // ?limit= on /api/v1/connections
inline constexpr size_t kDefaultConnectionsLimit = 10000;

// The ?limit= value of /api/v1/connections: an integer from 1 to kMaxConnectionsLimit.
std::optional<size_t> parse_connections_limit(const std::string& text);

// What GET /api/v1/connections asks for, from its decoded query parameters (libmicrohttpd's GET arguments).
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

// libmicrohttpd on one epoll thread: a slow or idle client costs a socket and a bounded buffer,
// never a thread, and the limits (HttpLimits) decide how many of them there can be.
class HttpServer {
 public:
  // Binds and listens; throws FatalError (exit 2) when the address or the TLS files are unusable.
  HttpServer(SnapshotStore& store, const util::ListenAddress& address, const HttpSecurity& security = {},
             const HttpLimits& limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  void start();  // serves on threads of its own (started here, not when constructed)
  void stop();
  uint16_t port() const { return port_; }
  HttpStats stats() const { return gate_.stats(); }

  struct Request;  // a connection's current request, for the library's callbacks (http_server.cpp)

 private:
  friend struct HttpCallbacks;
  int serve(MHD_Connection* connection, Request& request, const char* url, const char* method);
  int route(MHD_Connection* connection, Request& request, const char* url);  // a GET whose head passed
  // /api/v1/connections waits for the reader thread: off the event thread, on a thread of its own.
  // false once stopping (the request is answered 503 instead).
  bool list_connections(MHD_Connection* connection, Request& request, size_t limit);

  SnapshotStore& store_;
  HttpSecurity security_;
  std::string expected_authorization_;  // "Basic base64(user:password)", or empty
  std::string tls_cert_pem_, tls_key_pem_;
  ConnectionGate gate_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  MHD_Daemon* daemon_ = nullptr;
  std::thread sweeper_;
  std::mutex sweeper_mutex_;
  std::condition_variable sweeper_wake_;
  bool stopping_ = false;
  struct Lister {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::mutex listers_mutex_;
  std::list<Lister> listers_;
  bool listers_closed_ = false;
};

}  // namespace netwatch::serve
