#include "agent/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>

#include <cerrno>
#include <cstring>

#include "agent/log.h"
#include "agent/metrics_render.h"
#include "agent/snapshot_json.h"

namespace netwatch {

std::optional<ListenAddress> parse_listen_address(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size() || text.size() - colon - 1 > 5) return std::nullopt;
  std::string host = text.substr(0, colon), port = text.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  unsigned long n = std::stoul(port);
  if (n > 65535) return std::nullopt;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) return std::nullopt;
  } else {
    in_addr a4;
    if (inet_pton(AF_INET, host.c_str(), &a4) != 1) return std::nullopt;
  }
  return ListenAddress{host, static_cast<uint16_t>(n)};
}

std::optional<size_t> parse_connections_limit(const std::string& text) {
  if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  size_t n = std::stoul(text);
  if (n < 1 || n > kMaxConnectionsLimit) return std::nullopt;
  return n;
}

HttpServer::HttpServer(const SnapshotStore& store, const ListenAddress& address)
    : store_(store), server_(std::make_unique<httplib::Server>()) {
  httplib::Server& srv = *server_;

  srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto snapshot = store_.latest();
    if (!snapshot) {
      res.status = 503;
      res.set_content("netwatch: no data yet\n", "text/plain");
      return;
    }
    res.set_content(render_metrics_text(*snapshot), "text/plain; version=0.0.4; charset=utf-8");
  });

  srv.Get("/api/v1/connections", [this](const httplib::Request& req, httplib::Response& res) {
    size_t limit = kDefaultConnectionsLimit;
    if (req.has_param("limit")) {
      auto n = parse_connections_limit(req.get_param_value("limit"));
      if (!n) {
        res.status = 400;
        res.set_content("{\"error\":\"limit must be an integer from 1 to 100000\"}\n", "application/json");
        return;
      }
      limit = *n;
    }
    auto snapshot = store_.latest();
    if (!snapshot) {
      res.status = 503;
      res.set_content("{\"error\":\"no data yet\"}\n", "application/json");
      return;
    }
    res.set_content(snapshot_to_json(*snapshot, limit).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
  });

  srv.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    bool ready = store_.latest() != nullptr;
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ok\n" : "starting\n", "text/plain");
  });

  int port = address.port == 0 ? srv.bind_to_any_port(address.host) : (srv.bind_to_port(address.host, address.port) ? address.port : -1);
  if (port < 0) {
    std::string where = (address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host) +
                        ":" + std::to_string(address.port);
    throw FatalError("cannot listen on " + where + ": " + std::strerror(errno) +
                         " (is another agent running? choose another --listen address)",
                     kExitUsage);
  }
  port_ = static_cast<uint16_t>(port);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void HttpServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace netwatch
