// The HTTP endpoints' limits against slow, flooding and oversized clients, and the gate that
// enforces the parts the HTTP library does not: per-client caps counted at accept, and one
// deadline for a whole request head (TLS handshake included) instead of a timeout per read.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace netwatch::serve {

struct HttpLimits {
  size_t max_connections = 128;               // open at once; more are closed at accept
  size_t max_connections_per_client = 16;     // open at once from one client address
  uint64_t head_timeout_ns = 5'000'000'000;   // accept (or a keep-alive request's first byte) to a complete head
  uint64_t idle_timeout_ns = 10'000'000'000;  // a keep-alive connection between requests
  size_t max_uri_bytes = 4096;                // longer: 414
  size_t max_header_bytes = 8192;             // all header lines together; more: 431

  // The per-connection memory that bounds what the library buffers: the head twice (read buffer
  // and parsed copies) plus room for the response headers.
  size_t connection_memory_bytes() const { return 2 * (max_uri_bytes + max_header_bytes) + 16384; }
};

// "" when usable, else one line saying which flag is wrong and what it must be.
std::string validate_http_limits(const HttpLimits& limits);

// What the gate counted; rendered as netwatch_http_* self-metrics.
struct HttpStats {
  uint64_t connections_open = 0;
  uint64_t refused_overall = 0;
  uint64_t refused_per_client = 0;
  uint64_t timed_out_head = 0;
  uint64_t timed_out_idle = 0;
  uint64_t rejected_uri = 0;     // 414
  uint64_t rejected_header = 0;  // 431
};

// Tracks every open HTTP connection by its socket. The server calls admit() at accept, then
// opened()/closed() around a connection's life and the request hooks in between; sweep() runs
// on a timer and shuts down the sockets that overstayed. All calls are thread-safe.
class ConnectionGate {
 public:
  explicit ConnectionGate(const HttpLimits& limits) : limits_(limits) {}

  // At accept: false (and counted) when the connection would exceed a cap.
  bool admit(const sockaddr* peer);
  void opened(int fd, const sockaddr* peer, uint64_t now_ns);
  void closed(int fd);
  void request_started(int fd, uint64_t now_ns);  // the request line is in: a head began (if not already)
  void head_complete(int fd);                     // headers parsed: no head deadline until the next request
  void request_done(int fd, uint64_t now_ns);     // response sent: idle until the next request's first byte

  // Shuts down (under the lock, so the fd cannot be closed and reused meanwhile) every socket
  // whose head is late or that idled too long; returns how many.
  size_t sweep(uint64_t now_ns);

  void count_rejected_uri() { rejected_uri_.fetch_add(1, std::memory_order_relaxed); }
  void count_rejected_header() { rejected_header_.fetch_add(1, std::memory_order_relaxed); }
  HttpStats stats() const;
  const HttpLimits& limits() const { return limits_; }

 private:
  enum class Phase { head, request, idle, shut };
  struct Entry {
    std::string client;  // address bytes
    Phase phase = Phase::head;
    uint64_t since_ns = 0;
  };

  const HttpLimits limits_;
  mutable std::mutex mutex_;
  std::unordered_map<int, Entry> open_;
  std::map<std::string, size_t> per_client_;
  uint64_t refused_overall_ = 0, refused_per_client_ = 0, timed_out_head_ = 0, timed_out_idle_ = 0;
  std::atomic<uint64_t> rejected_uri_{0}, rejected_header_{0};
};

// The peer's address bytes (4 for IPv4, 16 for IPv6; an IPv4-mapped IPv6 address counts as IPv4).
std::string client_key(const sockaddr* peer);

}  // namespace netwatch::serve
