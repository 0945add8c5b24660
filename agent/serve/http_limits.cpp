#include "serve/http_limits.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cstring>

namespace netwatch::serve {

std::string validate_http_limits(const HttpLimits& l) {
  if (l.max_connections < 1 || l.max_connections > 65536) return "--http-max-connections must be from 1 to 65536";
  if (l.max_connections_per_client < 1 || l.max_connections_per_client > l.max_connections)
    return "--http-max-connections-per-client must be from 1 to --http-max-connections";
  if (l.head_timeout_ns < 100'000'000 || l.head_timeout_ns > 300'000'000'000)
    return "--http-head-timeout must be from 100ms to 5m";
  if (l.idle_timeout_ns < 1'000'000'000 || l.idle_timeout_ns > 3600'000'000'000)
    return "--http-idle-timeout must be from 1s to 1h";
  if (l.max_uri_bytes < 256 || l.max_uri_bytes > 1 << 20) return "--http-max-uri-bytes must be from 256 to 1048576";
  if (l.max_header_bytes < 1024 || l.max_header_bytes > 1 << 20)
    return "--http-max-header-bytes must be from 1024 to 1048576";
  return "";
}

std::string client_key(const sockaddr* peer) {
  if (peer->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(peer);
    return std::string(reinterpret_cast<const char*>(&in->sin_addr), 4);
  }
  if (peer->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(peer);
    const char* bytes = reinterpret_cast<const char*>(&in6->sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return std::string(bytes + 12, 4);
    return std::string(bytes, 16);
  }
  return {};
}

bool ConnectionGate::admit(const sockaddr* peer) {
  std::lock_guard lock(mutex_);
  if (open_.size() >= limits_.max_connections) {
    ++refused_overall_;
    return false;
  }
  auto it = per_client_.find(client_key(peer));
  if (it != per_client_.end() && it->second >= limits_.max_connections_per_client) {
    ++refused_per_client_;
    return false;
  }
  return true;
}

void ConnectionGate::opened(int fd, const sockaddr* peer, uint64_t now_ns) {
  std::lock_guard lock(mutex_);
  Entry& e = open_[fd];
  e.client = client_key(peer);
  e.phase = Phase::head;
  e.since_ns = now_ns;
  ++per_client_[e.client];
}

void ConnectionGate::closed(int fd) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(fd);
  if (it == open_.end()) return;
  auto client = per_client_.find(it->second.client);
  if (client != per_client_.end() && --client->second == 0) per_client_.erase(client);
  open_.erase(it);
}

void ConnectionGate::request_started(int fd, uint64_t now_ns) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(fd);
  if (it == open_.end() || it->second.phase != Phase::idle) return;  // a head already running keeps its start
  it->second.phase = Phase::head;
  it->second.since_ns = now_ns;
}

void ConnectionGate::head_complete(int fd) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(fd);
  if (it != open_.end() && it->second.phase != Phase::shut) it->second.phase = Phase::request;
}

void ConnectionGate::request_done(int fd, uint64_t now_ns) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(fd);
  if (it == open_.end() || it->second.phase == Phase::shut) return;
  it->second.phase = Phase::idle;
  it->second.since_ns = now_ns;
}

namespace {

// When the socket last received data, by the kernel's clock of it (tcpi_last_data_recv, ms ago);
// false for a socket that is not TCP.
bool last_data_ns_ago(int fd, uint64_t* ago_ns) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
  *ago_ns = uint64_t(info.tcpi_last_data_recv) * 1'000'000;
  return true;
}

}  // namespace

size_t ConnectionGate::sweep(uint64_t now_ns) {
  // A keep-alive request's first byte ends the idle phase; bytes from before the idle phase
  // began (the last request's) must not: the kernel's timestamp is in jiffies, so allow a margin.
  constexpr uint64_t kClockMarginNs = 20'000'000;
  std::lock_guard lock(mutex_);
  size_t shut = 0;
  for (auto& [fd, e] : open_) {
    if (e.phase == Phase::idle) {
      uint64_t ago = 0;
      if (last_data_ns_ago(fd, &ago) && ago < now_ns && now_ns - ago > e.since_ns + kClockMarginNs) {
        e.phase = Phase::head;
        e.since_ns = now_ns - ago;
      }
    }
    uint64_t limit = e.phase == Phase::head   ? limits_.head_timeout_ns
                     : e.phase == Phase::idle ? limits_.idle_timeout_ns
                                              : 0;
    // A callback may have stamped since_ns after now_ns was read (the caller reads the clock
    // before it waits for the lock): that connection just did something, it is not late.
    if (limit == 0 || e.since_ns >= now_ns || now_ns - e.since_ns < limit) continue;
    (e.phase == Phase::head ? timed_out_head_ : timed_out_idle_)++;
    // shutdown, not close: the server still owns the fd and closes it when it sees the EOF.
    ::shutdown(fd, SHUT_RDWR);
    e.phase = Phase::shut;
    ++shut;
  }
  return shut;
}

HttpStats ConnectionGate::stats() const {
  std::lock_guard lock(mutex_);
  HttpStats s;
  s.connections_open = open_.size();
  s.refused_overall = refused_overall_;
  s.refused_per_client = refused_per_client_;
  s.timed_out_head = timed_out_head_;
  s.timed_out_idle = timed_out_idle_;
  s.rejected_uri = rejected_uri_.load(std::memory_order_relaxed);
  s.rejected_header = rejected_header_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace netwatch::serve
