#include "agent/http_server.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include "agent/log.h"
#include "agent/metrics_render.h"
#include "agent/snapshot_json.h"

namespace netwatch {

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

std::unique_ptr<httplib::Server> make_server(const HttpSecurity& security) {
  if (security.tls_cert_file.empty()) return std::make_unique<httplib::Server>();
  auto server = std::make_unique<httplib::SSLServer>(security.tls_cert_file.c_str(), security.tls_key_file.c_str());
  if (!server->is_valid())
    throw FatalError("cannot use the TLS certificate " + security.tls_cert_file + " and key " + security.tls_key_file +
                         ": unreadable, not PEM, or they do not match",
                     kExitUsage);
  return server;
}

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(n);
  return out;
}

}  // namespace

HttpServer::HttpServer(SnapshotStore& store, const ListenAddress& address, const HttpSecurity& security)
    : store_(store), server_(make_server(security)) {
  httplib::Server& srv = *server_;

  if (!security.basic_auth_user.empty()) {
    std::string expected = "Basic " + base64(security.basic_auth_user + ":" + security.basic_auth_password);
    srv.set_pre_routing_handler([expected](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/healthz") return httplib::Server::HandlerResponse::Unhandled;
      const std::string given = req.get_header_value("Authorization");
      // Constant time in the secret's length: a mismatch does not say where it is.
      bool ok = given.size() == expected.size() && CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
      if (ok) return httplib::Server::HandlerResponse::Unhandled;
      res.status = 401;
      res.set_header("WWW-Authenticate", "Basic realm=\"netwatch\"");
      res.set_content("netwatch: authentication required\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    });
  }

  srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto snapshot = store_.latest();
    if (!snapshot) {
      res.status = 503;
      res.set_content("netwatch: no data yet\n", "text/plain");
      return;
    }
    res.body = render_metrics_text(*snapshot);  // moved, not set_content()'s copy: ~130 bytes a series
    res.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  });

  srv.Get("/api/v1/connections", [this](const httplib::Request& req, httplib::Response& res) {
    auto query = parse_connections_query(req.params);
    if (!query) {
      res.status = 400;
      res.set_content("{\"error\":\"limit must be one integer from 1 to 100000\"}\n", "application/json");
      return;
    }
    const size_t limit = query->limit;
    if (!store_.latest()) {
      res.status = 503;
      res.set_content("{\"error\":\"no data yet\"}\n", "application/json");
      return;
    }
    // The reader thread lists the connections at its next drain, at most --drain-interval
    // (10 s at the most) away.
    auto snapshot = store_.request_connections(limit, std::chrono::seconds(15));
    if (!snapshot) {
      res.status = 503;
      res.set_content("{\"error\":\"the agent is stopping or too busy to list connections\"}\n", "application/json");
      return;
    }
    std::string body = snapshot_to_json_text(*snapshot, limit);
    body += '\n';
    snapshot.reset();  // the listed connections go before the body is sent
    // Moved, not set_content()'s copy: the body is ~400 bytes a connection.
    res.body = std::move(body);
    res.set_header("Content-Type", "application/json");
  });

  srv.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    bool ready = store_.latest() != nullptr;
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ok\n" : "starting\n", "text/plain");
  });

  int port = address.port == 0 ? srv.bind_to_any_port(address.host)
                               : (srv.bind_to_port(address.host, address.port) ? address.port : -1);
  if (port < 0) {
    std::string where = (address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host) + ":" +
                        std::to_string(address.port);
    throw FatalError("cannot listen on " + where + ": " + std::strerror(errno) +
                         " (is another agent running? choose another --listen address)",
                     kExitUsage);
  }
  port_ = static_cast<uint16_t>(port);
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void HttpServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace netwatch
