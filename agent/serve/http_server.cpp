#include "serve/http_server.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <sstream>

#include "util/clock.h"
#include "util/log.h"
#include "serve/content_negotiation.h"
#include "serve/metrics_protobuf.h"
#include "serve/metrics_render.h"
#include "serve/snapshot_json.h"

namespace netwatch::serve {

std::optional<size_t> parse_connections_limit(const std::string& text) {
  if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  size_t n = std::stoul(text);
  if (n < 1 || n > kMaxConnectionsLimit) return std::nullopt;
  return n;
}

std::optional<ConnectionsQuery> parse_connections_query(const std::multimap<std::string, std::string>& params) {
  ConnectionsQuery query;
  auto [first, last] = params.equal_range("limit");
  if (first == last) return query;
  if (std::next(first) != last) return std::nullopt;
  auto limit = parse_connections_limit(first->second);
  if (!limit) return std::nullopt;
  query.limit = *limit;
  return query;
}

namespace {

std::string base64(const std::string& in) {
  gnutls_datum_t data{reinterpret_cast<unsigned char*>(const_cast<char*>(in.data())), unsigned(in.size())};
  gnutls_datum_t encoded{};
  if (gnutls_base64_encode2(&data, &encoded) < 0) throw std::bad_alloc();
  std::string out(reinterpret_cast<const char*>(encoded.data), encoded.size);
  gnutls_free(encoded.data);
  return out;
}

// Constant time in the expected value's length: a mismatch does not say where it is.
bool same_secret(const char* given, const std::string& expected) {
  if (given == nullptr || std::strlen(given) != expected.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Whether GnuTLS (what serves TLS) accepts the pair: both PEM, and the key is the certificate's.
bool usable_tls_pair(const std::string& cert, const std::string& key) {
  gnutls_certificate_credentials_t credentials;
  if (gnutls_certificate_allocate_credentials(&credentials) != GNUTLS_E_SUCCESS) return false;
  gnutls_datum_t c{reinterpret_cast<unsigned char*>(const_cast<char*>(cert.data())), unsigned(cert.size())};
  gnutls_datum_t k{reinterpret_cast<unsigned char*>(const_cast<char*>(key.data())), unsigned(key.size())};
  bool ok = gnutls_certificate_set_x509_key_mem(credentials, &c, &k, GNUTLS_X509_FMT_PEM) >= 0;
  gnutls_certificate_free_credentials(credentials);
  return ok;
}

// Bound and listening, with a deep accept queue (the kernel caps it at net.core.somaxconn). The
// ConnectionGate refuses a flood at accept, which is quick; what the queue cannot hold waits in
// the handshake's retransmissions, a second or more, and that includes a well-behaved client's
// (a kubelet probe's timeout is 1 s by default). A queued connection is a kernel socket without
// buffers until it is accepted.
constexpr int kListenBacklog = 4096;

int listen_socket(const util::ListenAddress& address) {
  bool v6 = address.host.find(':') != std::string::npos;
  sockaddr_storage storage{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(address.port);
    inet_pton(AF_INET6, address.host.c_str(), &a->sin6_addr);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(address.port);
    inet_pton(AF_INET, address.host.c_str(), &a->sin_addr);
    len = sizeof(*a);
  }
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), len) != 0 ||
      listen(fd, kListenBacklog) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len);
  if (storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
}

int connection_fd(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  return info ? info->connect_fd : -1;
}

MHD_Result respond(MHD_Connection* connection, unsigned status, std::string body, const char* content_type,
                   const char* authenticate = nullptr, const char* vary = nullptr) {
  // The body moves into the response and is freed with it: never copied (a /metrics body is MBs).
  auto* owned = new std::string(std::move(body));
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      owned->size(), owned->data(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  if (response == nullptr) {
    delete owned;
    return MHD_NO;
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (authenticate) MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, authenticate);
  if (vary) MHD_add_response_header(response, MHD_HTTP_HEADER_VARY, vary);
  MHD_Result queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return queued;
}

constexpr char kJson[] = "application/json";
constexpr char kText[] = "text/plain";

}  // namespace

// One per connection (made when it opens, freed when it closes), reset for each request on it.
struct HttpServer::Request {
  int fd = -1;
  size_t uri_bytes = 0;
  bool head_seen = false;          // the handler ran for this request
  bool listing = false;            // suspended for a lister thread
  std::atomic<bool> ready{false};  // a lister thread filled in the answer below
  unsigned status = 0;
  std::string body;
};

// The library's C callbacks, forwarding to the server and its gate.
struct HttpCallbacks {
  static MHD_Result admit(void* cls, const sockaddr* peer, socklen_t) {
    return static_cast<HttpServer*>(cls)->gate_.admit(peer) ? MHD_YES : MHD_NO;
  }
  static void connection(void* cls, MHD_Connection* connection, void** socket_context,
                         MHD_ConnectionNotificationCode code) {
    auto* server = static_cast<HttpServer*>(cls);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      auto* request = new HttpServer::Request;
      request->fd = connection_fd(connection);
      const MHD_ConnectionInfo* peer = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
      sockaddr none{};
      server->gate_.opened(request->fd, peer ? peer->client_addr : &none, util::monotonic_ns());
      *socket_context = request;
    } else {
      auto* request = static_cast<HttpServer::Request*>(*socket_context);
      if (request == nullptr) return;
      server->gate_.closed(request->fd);
      delete request;
      *socket_context = nullptr;
    }
  }
  // The request line is in; its URI raw (query included), as the client sent it.
  static void* request_line(void* cls, const char* uri, MHD_Connection* connection) {
    auto* server = static_cast<HttpServer*>(cls);
    const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    auto* request = info ? static_cast<HttpServer::Request*>(info->socket_context) : nullptr;
    if (request == nullptr) return nullptr;
    request->uri_bytes = std::strlen(uri);
    request->head_seen = false;
    request->listing = false;
    request->ready = false;
    request->body.clear();
    server->gate_.request_started(request->fd, util::monotonic_ns());
    return request;
  }
  static MHD_Result handle(void* cls, MHD_Connection* connection, const char* url, const char* method, const char*,
                           const char*, size_t* upload_size, void** request_cls) {
    auto* request = static_cast<HttpServer::Request*>(*request_cls);
    if (request == nullptr) return MHD_NO;
    *upload_size = 0;  // a body is never read: every answer is queued before it
    return static_cast<MHD_Result>(static_cast<HttpServer*>(cls)->serve(connection, *request, url, method));
  }
  static void completed(void* cls, MHD_Connection*, void** request_cls, MHD_RequestTerminationCode code) {
    auto* request = static_cast<HttpServer::Request*>(*request_cls);
    if (request != nullptr && code == MHD_REQUEST_TERMINATED_COMPLETED_OK)
      static_cast<HttpServer*>(cls)->gate_.request_done(request->fd, util::monotonic_ns());
  }
};

HttpServer::HttpServer(SnapshotStore& store, const util::ListenAddress& address, const HttpSecurity& security,
                       const HttpLimits& limits)
    : store_(store), security_(security), gate_(limits) {
  if (!security.tls_cert_file.empty()) {
    tls_cert_pem_ = read_file(security.tls_cert_file);
    tls_key_pem_ = read_file(security.tls_key_file);
    if (!usable_tls_pair(tls_cert_pem_, tls_key_pem_))
      throw util::FatalError("cannot use the TLS certificate " + security.tls_cert_file + " and key " +
                                 security.tls_key_file + ": unreadable, not PEM, or they do not match",
                             util::kExitUsage);
  }
  if (!security.basic_auth_user.empty())
    expected_authorization_ = "Basic " + base64(security.basic_auth_user + ":" + security.basic_auth_password);

  listen_fd_ = listen_socket(address);
  if (listen_fd_ < 0) {
    std::string where = (address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host) + ":" +
                        std::to_string(address.port);
    throw util::FatalError("cannot listen on " + where + ": " + std::strerror(errno) +
                               " (is another agent running? choose another --listen address)",
                           util::kExitUsage);
  }
  port_ = bound_port(listen_fd_);
}

HttpServer::~HttpServer() {
  stop();
  if (listen_fd_ >= 0) close(listen_fd_);  // never handed to the library
}

void HttpServer::start() {
  const HttpLimits& limits = gate_.limits();
  // The library's own caps sit a little above the gate's: the gate refuses first (and counts it),
  // the library's are the backstop. Its timeout is per read: it covers a stalled request or
  // response; the gate's sweeper enforces the head and keep-alive deadlines a little sooner.
  constexpr unsigned kBackstopMargin = 8;
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
  if (!tls_cert_pem_.empty()) flags |= MHD_USE_TLS;
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&storage), &len);
  if (storage.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  // Longer than both deadlines, so that it never pre-empts them.
  const uint64_t deadline_ns = std::max(limits.idle_timeout_ns, limits.head_timeout_ns);
  const unsigned timeout_s = unsigned((deadline_ns + 999'999'999) / 1'000'000'000) + 1;
  MHD_OptionItem tls[] = {
      {MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(tls_key_pem_.c_str())},
      {MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(tls_cert_pem_.c_str())},
      {MHD_OPTION_END, 0, nullptr},
  };
  if (tls_cert_pem_.empty()) tls[0].option = MHD_OPTION_END;
  daemon_ = MHD_start_daemon(flags, 0, &HttpCallbacks::admit, this, &HttpCallbacks::handle, this,              //
                             MHD_OPTION_LISTEN_SOCKET, listen_fd_,                                             //
                             MHD_OPTION_CONNECTION_LIMIT, unsigned(limits.max_connections + kBackstopMargin),  //
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                             unsigned(limits.max_connections_per_client + kBackstopMargin),         //
                             MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,                              //
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, limits.connection_memory_bytes(),  //
                             MHD_OPTION_NOTIFY_CONNECTION, &HttpCallbacks::connection, this,        //
                             MHD_OPTION_URI_LOG_CALLBACK, &HttpCallbacks::request_line, this,       //
                             MHD_OPTION_NOTIFY_COMPLETED, &HttpCallbacks::completed, this,          //
                             MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
  if (daemon_ == nullptr) throw util::FatalError("cannot start the HTTP server (libmicrohttpd refused its options)");
  listen_fd_ = -1;  // the library's now: MHD_stop_daemon closes it
  sweeper_ = std::thread([this] {
    // The deadlines are seconds; a sweep every 250 ms keeps them within a quarter second.
    std::unique_lock lock(sweeper_mutex_);
    while (!sweeper_wake_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stopping_; }))
      gate_.sweep(util::monotonic_ns());
  });
}

void HttpServer::stop() {
  {
    std::lock_guard lock(sweeper_mutex_);
    stopping_ = true;
  }
  sweeper_wake_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  {
    // Every suspended request is resumed before the library stops (it must not stop with one).
    std::lock_guard lock(listers_mutex_);
    listers_closed_ = true;
    for (Lister& lister : listers_)
      if (lister.thread.joinable()) lister.thread.join();
    listers_.clear();
  }
  if (daemon_) MHD_stop_daemon(daemon_);
  daemon_ = nullptr;
}

int HttpServer::serve(MHD_Connection* connection, Request& request, const char* url, const char* method) {
  const HttpLimits& limits = gate_.limits();
  const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0 || std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
  if (request.head_seen) return get ? route(connection, request, url) : MHD_YES;
  // The head is in. Answers to a bad head go out now, and the connection closes after them (the
  // library reads nothing more once a response is queued this early); a good GET is answered at
  // the next call, so the connection can stay open for the next request.
  request.head_seen = true;
  gate_.head_complete(request.fd);
  if (request.uri_bytes > limits.max_uri_bytes) {
    gate_.count_rejected_uri();
    return respond(connection, MHD_HTTP_URI_TOO_LONG, "netwatch: the URI is too long\n", kText);
  }
  size_t header_bytes = 0;
  MHD_get_connection_values(
      connection, MHD_HEADER_KIND,
      [](void* cls, MHD_ValueKind, const char* key, const char* value) {
        *static_cast<size_t*>(cls) += std::strlen(key) + (value ? std::strlen(value) : 0) + 4;  // ": " and CRLF
        return MHD_YES;
      },
      &header_bytes);
  if (header_bytes > limits.max_header_bytes) {
    gate_.count_rejected_header();
    return respond(connection, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "netwatch: the headers are too large\n",
                   kText);
  }

  if (!get) return respond(connection, MHD_HTTP_NOT_FOUND, "", kText);  // read-only endpoints; a body is never read
  return MHD_YES;
}

int HttpServer::route(MHD_Connection* connection, Request& request, const char* url) {
  if (request.listing) {  // resumed: the lister thread has the answer
    if (!request.ready) return MHD_YES;
    return respond(connection, request.status, std::move(request.body), kJson);
  }
  const std::string path = url;
  if (path != "/metrics" && path != "/api/v1/connections" && path != "/healthz")
    return respond(connection, MHD_HTTP_NOT_FOUND, "", kText);

  if (path == "/healthz") {  // open: kubelet probes need no credentials, and it tells nothing
    bool ready = store_.latest() != nullptr;
    return respond(connection, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, ready ? "ok\n" : "starting\n",
                   kText);
  }
  if (!expected_authorization_.empty() &&
      !same_secret(MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                   expected_authorization_))
    return respond(connection, MHD_HTTP_UNAUTHORIZED, "netwatch: authentication required\n", kText,
                   "Basic realm=\"netwatch\"");

  if (path == "/metrics") {
    auto snapshot = store_.latest();
    if (!snapshot) return respond(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "netwatch: no data yet\n", kText);
    const char* accept = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    std::vector<prometheus::MetricFamily> http = http_metric_families(gate_.stats(), gate_.limits());
    bool protobuf = negotiate_metrics_format(accept ? accept : "") == MetricsFormat::protobuf;
    std::string body;
    try {
      body = protobuf ? render_metrics_protobuf(*snapshot, http) : render_metrics_text(*snapshot, http);
    } catch (const std::exception& e) {  // never into libmicrohttpd's C callback
      util::log_error(std::string("rendering /metrics failed: ") + e.what());
      return respond(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "netwatch: rendering /metrics failed\n", kText);
    }
    snapshot.reset();
    // The body depends on the Accept header: caches must not hand one scraper's format to another.
    return respond(connection, MHD_HTTP_OK, std::move(body), protobuf ? kProtobufContentType : kTextContentType,
                   nullptr, MHD_HTTP_HEADER_ACCEPT);
  }

  std::multimap<std::string, std::string> params;
  MHD_get_connection_values(
      connection, MHD_GET_ARGUMENT_KIND,
      [](void* cls, MHD_ValueKind, const char* key, const char* value) {
        static_cast<std::multimap<std::string, std::string>*>(cls)->emplace(key, value ? value : "");
        return MHD_YES;
      },
      &params);
  auto query = parse_connections_query(params);
  if (!query)
    return respond(connection, MHD_HTTP_BAD_REQUEST, "{\"error\":\"limit must be one integer from 1 to 100000\"}\n",
                   kJson);
  if (!store_.latest())
    return respond(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"error\":\"no data yet\"}\n", kJson);
  if (!list_connections(connection, request, query->limit))
    return respond(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                   "{\"error\":\"the agent is stopping or too busy to list connections\"}\n", kJson);
  return MHD_YES;
}

bool HttpServer::list_connections(MHD_Connection* connection, Request& request, size_t limit) {
  std::lock_guard lock(listers_mutex_);
  if (listers_closed_) return false;
  MHD_suspend_connection(connection);
  request.listing = true;
  for (auto it = listers_.begin(); it != listers_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    it->thread.join();
    it = listers_.erase(it);
  }
  Lister& lister = listers_.emplace_back();
  lister.thread = std::thread([this, connection, &request, limit, &lister] {
    // The reader thread lists the connections at its next drain, at most --drain-interval
    // (10 s at the most) away.
    auto snapshot = store_.request_connections(limit, std::chrono::seconds(15));
    if (!snapshot) {
      request.status = MHD_HTTP_SERVICE_UNAVAILABLE;
      request.body = "{\"error\":\"the agent is stopping or too busy to list connections\"}\n";
    } else {
      request.status = MHD_HTTP_OK;
      request.body = snapshot_to_json_text(*snapshot, limit);
      request.body += '\n';
    }
    snapshot.reset();  // the listed connections go before the body is sent
    request.ready = true;
    MHD_resume_connection(connection);
    lister.done = true;
  });
  return true;
}

}  // namespace netwatch::serve
