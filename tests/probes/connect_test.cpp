// The connect path: handshakes that complete, are refused, or time out, over real loopback
// sockets of this process. Ground truth is the sockets themselves (getsockname, SO_COOKIE,
// the errno connect() returned) and the test's own clock.
#include <netinet/tcp.h>

#include <map>
#include <set>

#include "tests/support/harness.h"

namespace nwtest {
namespace {

using netwatch::event::Direction;
using netwatch::kernel::AttachVariant;

class ConnectTest : public KernelTest {};

TEST_P(ConnectTest, counts_every_handshake_on_both_ends) {
  ASSERT_NO_FATAL_FAILURE(start_tracing());
  constexpr int kConnects = 5;
  const std::string comm = thread_comm();

  for (const Family& fam : kFamilies) {
    SCOPED_TRACE(fam.af == AF_INET ? "IPv4" : "IPv6");
    const uint16_t server_port = port(61100, fam.event_family);
    Fd listener = listen_on(fam.af, server_port);
    std::vector<Fd> clients, accepted;
    std::map<uint16_t, uint64_t> cookie_of;  // client local port -> SO_COOKIE
    for (int i = 0; i < kConnects; ++i) {
      clients.push_back(connect_to(fam.af, server_port));
      cookie_of[local_port(clients.back().get())] = socket_cookie(clients.back().get());
    }
    // Handshakes complete without accept(); taking them proves the kernel saw them all too.
    std::map<uint16_t, uint64_t> accepted_cookie_of;  // client port -> SO_COOKIE of our end
    for (int i = 0; i < kConnects; ++i) {
      accepted.push_back(accept_one(listener.get()));
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      getpeername(accepted.back().get(), reinterpret_cast<sockaddr*>(&peer), &len);
      uint16_t peer_port = ntohs(fam.af == AF_INET ? reinterpret_cast<sockaddr_in*>(&peer)->sin_port
                                                   : reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port);
      accepted_cookie_of[peer_port] = socket_cookie(accepted.back().get());
    }

    auto is_connect = [&](const Event& e) { return e.type == EventType::connect && e.dport == server_port; };
    auto is_accept = [&](const Event& e) { return e.type == EventType::accept && e.sport == server_port; };
    events_->wait_for(is_connect, kConnects);
    events_->wait_for(is_accept, kConnects);
    events_->settle();
    std::vector<Event> connects = events_->matching(is_connect);
    std::vector<Event> accepts = events_->matching(is_accept);
    ASSERT_EQ(connects.size(), size_t(kConnects));
    ASSERT_EQ(accepts.size(), size_t(kConnects));

    std::set<uint16_t> seen_connect, seen_accept;
    std::set<uint64_t> cookies;
    for (const Event& e : connects) {
      ASSERT_TRUE(cookie_of.count(e.sport)) << "connect event from a port we did not use: " << e.sport;
      seen_connect.insert(e.sport);
      cookies.insert(e.cookie);
      EXPECT_EQ(e.direction, Direction::outbound);
      EXPECT_EQ(e.saddr.family, fam.event_family);
      EXPECT_EQ(e.saddr.to_string(), loopback_text(fam.af));
      EXPECT_EQ(e.daddr.to_string(), loopback_text(fam.af));
      EXPECT_GT(e.latency_ns, 0u);
      EXPECT_LT(e.latency_ns, 1'000'000'000u) << "a loopback handshake takes microseconds";
      EXPECT_EQ(e.pid, static_cast<uint32_t>(getpid()));
      EXPECT_EQ(std::string(e.comm_view()), comm);
      EXPECT_NE(e.cookie, 0u);
      // tp_btf asks the kernel for the socket cookie where its programs may (the same kernels
      // that give them sk_storage). Elsewhere a stand-in serves until the kernel has made one
      // (netwatch.bpf.c, sock_id()).
      if (probes_->socket_storage()) {
        EXPECT_EQ(e.cookie, cookie_of[e.sport]);
      }
    }
    EXPECT_EQ(seen_connect.size(), size_t(kConnects)) << "one connect event per socket";
    EXPECT_EQ(cookies.size(), size_t(kConnects)) << "every connection has its own cookie";

    for (const Event& e : accepts) {
      ASSERT_TRUE(cookie_of.count(e.dport)) << "accept event for a peer port we did not use: " << e.dport;
      seen_accept.insert(e.dport);
      EXPECT_EQ(e.direction, Direction::inbound);
      EXPECT_EQ(e.saddr.family, fam.event_family);
      EXPECT_EQ(e.saddr.to_string(), loopback_text(fam.af));
      EXPECT_EQ(e.daddr.to_string(), loopback_text(fam.af));
      // The handshake completes in softirq (here in our connect()); the owner is the listener's,
      // and this process called listen() too. inbound_owner_test.cpp tells the two apart.
      EXPECT_EQ(e.pid, static_cast<uint32_t>(getpid())) << "the owner of the listener that accepted it";
      if (probes_->socket_storage()) {
        EXPECT_EQ(e.cookie, accepted_cookie_of[e.dport]);
      }
    }
    EXPECT_EQ(seen_accept.size(), size_t(kConnects)) << "one accept event per socket";
  }
  EXPECT_EQ(events_->decode_errors(), 0u);
}

TEST_P(ConnectTest, refused_connects_fail_with_econnrefused) {
  ASSERT_NO_FATAL_FAILURE(start_tracing());
  constexpr int kAttempts = 4;
  for (const Family& fam : kFamilies) {
    SCOPED_TRACE(fam.af == AF_INET ? "IPv4" : "IPv6");
    const uint16_t closed_port = port(61200, fam.event_family);
    Fd holder = bind_only(fam.af, closed_port);  // bound, never listening: the kernel answers RST
    std::set<uint16_t> local_ports;
    for (int i = 0; i < kAttempts; ++i) {
      Fd fd = tcp_socket(fam.af);
      ASSERT_EQ(connect_loopback(fd.get(), fam.af, closed_port), ECONNREFUSED);
      local_ports.insert(local_port(fd.get()));
    }

    auto is_failed = of_type_on_port(EventType::connect_failed, closed_port);
    events_->wait_for(is_failed, kAttempts);
    events_->settle();
    std::vector<Event> failed = events_->matching(is_failed);
    ASSERT_EQ(failed.size(), size_t(kAttempts));
    for (const Event& e : failed) {
      EXPECT_EQ(e.error, ECONNREFUSED);
      EXPECT_EQ(e.dport, closed_port);
      EXPECT_TRUE(local_ports.count(e.sport)) << "unexpected local port " << e.sport;
      EXPECT_EQ(e.pid, static_cast<uint32_t>(getpid()));
      EXPECT_EQ(e.direction, Direction::outbound);
    }
    EXPECT_TRUE(events_->matching(of_type_on_port(EventType::connect, closed_port)).empty());
    EXPECT_TRUE(events_->matching(of_type_on_port(EventType::close, closed_port)).empty())
        << "a failed connect is reported once, as connect_failed";
  }
}

TEST_P(ConnectTest, dropped_syn_fails_with_etimedout) {
  ASSERT_NO_FATAL_FAILURE(start_tracing());
  const uint16_t silent_port = port(61300);
  Fd holder = bind_only(AF_INET, silent_port);  // nothing else may use the port meanwhile
  NftTable nft;
  uint64_t rule = nft.add_rule("tcp dport " + std::to_string(silent_port) + " counter drop");

  Fd fd = tcp_socket(AF_INET);
  int syn_retries = 1;  // SYN, one retransmit after 1 s, give up 2 s later: ~3 s
  ASSERT_EQ(setsockopt(fd.get(), IPPROTO_TCP, TCP_SYNCNT, &syn_retries, sizeof(syn_retries)), 0);
  uint64_t started = monotonic_ns();
  ASSERT_EQ(connect_loopback(fd.get(), AF_INET, silent_port), ETIMEDOUT);
  uint64_t elapsed = monotonic_ns() - started;
  // Every SYN the socket sent met the drop rule. TCP_INFO cannot count them here: a failed
  // connect() runs tcp_disconnect(), which zeroes tcpi_total_retrans.
  const uint64_t syns = nft.packets(rule);
  ASSERT_GE(syns, 2u) << "the SYN was never retransmitted: the test proves nothing";

  auto is_failed = of_type_on_port(EventType::connect_failed, silent_port);
  events_->wait_for(is_failed, 1);
  events_->settle();
  std::vector<Event> failed = events_->matching(is_failed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].error, ETIMEDOUT);
  EXPECT_EQ(failed[0].sport, local_port(fd.get()));
  EXPECT_EQ(failed[0].pid, static_cast<uint32_t>(getpid()));
  // From SYN_SENT to CLOSE lies inside our connect() call, which returns right after.
  EXPECT_LE(failed[0].latency_ns, elapsed);
  EXPECT_GE(failed[0].latency_ns + 250'000'000, elapsed);

  // The SYN retransmissions are retransmit events of the same socket, and the agent counts every
  // one. Not every one need have its own event: a classic tracepoint program that fires while
  // another BPF program runs on the CPU is skipped by the kernel (seen once in CI, the second
  // SYN retransmission of three); the failed connect's final counters carry the rest.
  std::vector<Event> ours = events_->matching(of_type_on_port(EventType::retransmit, silent_port));
  ASSERT_FALSE(ours.empty()) << "no retransmit event for the SYN";
  for (const Event& e : ours) EXPECT_EQ(e.cookie, failed[0].cookie);
  ours.push_back(failed[0]);
  EXPECT_EQ(agent_retransmits(ours), syns - 1);
}

NW_ALL_COMBOS(ConnectTest);

}  // namespace
}  // namespace nwtest
