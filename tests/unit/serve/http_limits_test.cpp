// ConnectionGate: the caps counted at accept, and the head and keep-alive deadlines enforced on
// real loopback sockets (the peer sees the shutdown as EOF).
#include "serve/http_limits.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace netwatch::serve {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

sockaddr_in gate_peer(const char* ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}
const sockaddr* as_sockaddr(const sockaddr_in& a) {
  return reinterpret_cast<const sockaddr*>(&a);
}

uint64_t gate_now() {
  return uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// A connected loopback pair: the server's end (what the gate shuts down) and the client's.
struct GateSocketPair {
  int server = -1, client = -1;
  GateSocketPair() {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = gate_peer("127.0.0.1");
    socklen_t len = sizeof(a);
    bind(listener, reinterpret_cast<sockaddr*>(&a), len);
    listen(listener, 1);
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    client = socket(AF_INET, SOCK_STREAM, 0);
    connect(client, reinterpret_cast<sockaddr*>(&a), len);
    server = accept(listener, nullptr, nullptr);
    close(listener);
  }
  ~GateSocketPair() {
    close(server);
    close(client);
  }
  bool client_sees_eof() const {
    timeval tv{1, 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char c;
    return recv(client, &c, 1, 0) == 0;
  }
};

TEST(HttpLimits, defaults_are_valid_and_each_bad_flag_is_named) {
  HttpLimits l;
  EXPECT_EQ(validate_http_limits(l), "");
  EXPECT_EQ(l.connection_memory_bytes(), 2 * (4096 + 8192) + 16384u);
  auto bad = [](auto change) {
    HttpLimits l;
    change(l);
    return validate_http_limits(l);
  };
  EXPECT_NE(bad([](HttpLimits& l) { l.max_connections = 0; }).find("--http-max-connections "), std::string::npos);
  EXPECT_NE(bad([](HttpLimits& l) { l.max_connections_per_client = 200; }).find("--http-max-connections-per-client"),
            std::string::npos);
  EXPECT_NE(bad([](HttpLimits& l) { l.head_timeout_ns = 1; }).find("--http-head-timeout"), std::string::npos);
  EXPECT_NE(bad([](HttpLimits& l) { l.idle_timeout_ns = 0; }).find("--http-idle-timeout"), std::string::npos);
  EXPECT_NE(bad([](HttpLimits& l) { l.max_uri_bytes = 10; }).find("--http-max-uri-bytes"), std::string::npos);
  EXPECT_NE(bad([](HttpLimits& l) { l.max_header_bytes = 10; }).find("--http-max-header-bytes"), std::string::npos);
}

TEST(HttpLimits, client_key_is_the_address_and_a_mapped_ipv4_is_ipv4) {
  sockaddr_in v4 = gate_peer("10.1.2.3");
  sockaddr_in6 mapped{};
  mapped.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:10.1.2.3", &mapped.sin6_addr);
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
  EXPECT_EQ(client_key(as_sockaddr(v4)), std::string("\x0a\x01\x02\x03", 4));
  EXPECT_EQ(client_key(reinterpret_cast<sockaddr*>(&mapped)), client_key(as_sockaddr(v4)));
  EXPECT_EQ(client_key(reinterpret_cast<sockaddr*>(&v6)).size(), 16u);
}

TEST(ConnectionGate, refuses_beyond_the_per_client_and_overall_caps_and_counts_each) {
  HttpLimits l;
  l.max_connections = 3;
  l.max_connections_per_client = 2;
  ConnectionGate gate(l);
  sockaddr_in a = gate_peer("127.0.0.2"), b = gate_peer("127.0.0.3");
  int fd = 100;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(gate.admit(as_sockaddr(a)));
    gate.opened(fd++, as_sockaddr(a), 0);
  }
  EXPECT_FALSE(gate.admit(as_sockaddr(a)));  // a's third
  ASSERT_TRUE(gate.admit(as_sockaddr(b)));
  gate.opened(fd++, as_sockaddr(b), 0);
  EXPECT_FALSE(gate.admit(as_sockaddr(b)));  // fourth overall
  HttpStats s = gate.stats();
  EXPECT_EQ(s.connections_open, 3u);
  EXPECT_EQ(s.refused_per_client, 1u);
  EXPECT_EQ(s.refused_overall, 1u);
  gate.closed(100);
  EXPECT_TRUE(gate.admit(as_sockaddr(a)));  // a closed one frees both caps
  EXPECT_EQ(gate.stats().connections_open, 2u);
}

TEST(ConnectionGate, a_head_not_complete_by_the_deadline_is_shut_down_once) {
  ConnectionGate gate(HttpLimits{});
  GateSocketPair pair;
  sockaddr_in peer = gate_peer("127.0.0.1");
  gate.opened(pair.server, as_sockaddr(peer), 1000);
  EXPECT_EQ(gate.sweep(1000 + 5 * kSecond - 1), 0u);
  EXPECT_EQ(gate.sweep(1000 + 5 * kSecond), 1u);
  EXPECT_TRUE(pair.client_sees_eof());
  EXPECT_EQ(gate.sweep(1000 + 9 * kSecond), 0u);  // counted once
  EXPECT_EQ(gate.stats().timed_out_head, 1u);
  EXPECT_EQ(gate.stats().timed_out_idle, 0u);
}

// The kernel dates a socket's last received data (TCP_INFO), so these run on the real clock with
// deadlines of a few hundred milliseconds.
void gate_sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

TEST(ConnectionGate, a_request_being_served_has_no_deadline_and_an_idle_one_has_the_idle_limit) {
  HttpLimits l;
  l.idle_timeout_ns = 300'000'000;
  ConnectionGate gate(l);
  GateSocketPair pair;
  sockaddr_in peer = gate_peer("127.0.0.1");
  gate.opened(pair.server, as_sockaddr(peer), gate_now());
  ASSERT_EQ(send(pair.client, "GET", 3, 0), 3);
  gate.request_started(pair.server, gate_now());
  gate.head_complete(pair.server);
  EXPECT_EQ(gate.sweep(gate_now() + 60 * kSecond), 0u);  // a long answer (a slow reader) is the library's timeout's
  gate_sleep_ms(50);
  gate.request_done(pair.server, gate_now());
  EXPECT_EQ(gate.sweep(gate_now()), 0u);
  gate_sleep_ms(400);
  EXPECT_EQ(gate.sweep(gate_now()), 1u);
  EXPECT_TRUE(pair.client_sees_eof());
  EXPECT_EQ(gate.stats().timed_out_idle, 1u);
  EXPECT_EQ(gate.stats().timed_out_head, 0u);
}

// The server reads the clock, then waits for the gate's lock while the library's thread stamps
// a connection: a stamp later than the sweep's clock is a connection that just acted, not one
// that is a whole deadline late (an unsigned wrap once shut down busy keep-alive connections).
TEST(ConnectionGate, a_connection_stamped_after_the_sweeps_clock_reading_is_not_late) {
  HttpLimits l;
  ConnectionGate gate(l);
  GateSocketPair pair;
  sockaddr_in peer = gate_peer("127.0.0.1");
  const uint64_t sweep_clock = gate_now();
  gate.opened(pair.server, as_sockaddr(peer), sweep_clock + 1'000'000);
  gate.request_started(pair.server, sweep_clock + 1'000'000);
  EXPECT_EQ(gate.sweep(sweep_clock), 0u);
  gate.head_complete(pair.server);
  gate.request_done(pair.server, sweep_clock + 2'000'000);
  EXPECT_EQ(gate.sweep(sweep_clock), 0u);
  EXPECT_EQ(gate.stats().timed_out_head + gate.stats().timed_out_idle, 0u);
}

TEST(ConnectionGate, a_keep_alive_requests_first_byte_starts_its_head_deadline) {
  HttpLimits l;
  l.idle_timeout_ns = 200'000'000;
  l.head_timeout_ns = 700'000'000;
  ConnectionGate gate(l);
  GateSocketPair pair;
  sockaddr_in peer = gate_peer("127.0.0.1");
  gate.opened(pair.server, as_sockaddr(peer), gate_now());
  ASSERT_EQ(send(pair.client, "GET", 3, 0), 3);
  gate.head_complete(pair.server);
  gate_sleep_ms(50);
  gate.request_done(pair.server, gate_now());
  gate_sleep_ms(60);
  ASSERT_EQ(send(pair.client, "G", 1, 0), 1);  // the next request begins, and stalls
  gate_sleep_ms(250);
  EXPECT_EQ(gate.sweep(gate_now()), 0u);  // past the idle limit, but no longer idle
  gate_sleep_ms(550);
  EXPECT_EQ(gate.sweep(gate_now()), 1u);  // the head deadline, counted from the byte
  EXPECT_EQ(gate.stats().timed_out_head, 1u);
  EXPECT_EQ(gate.stats().timed_out_idle, 0u);
}

}  // namespace
}  // namespace netwatch::serve
