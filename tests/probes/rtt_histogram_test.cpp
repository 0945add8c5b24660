// netwatch_tcp_rtt_seconds for short connections: one that lives less than --rtt-interval must
// be observed with the srtt of its traffic (its final srtt, which its close carries), not the
// handshake's RTT that its first ACK shows. Ground truth is TCP_INFO's tcpi_rtt of each client
// socket read after the socket reached TCP_CLOSE (the values its close summary has).
#include <cstdio>
#include <thread>

#include "tests/support/harness.h"
#include "tests/support/kernel_tcp_info.h"

namespace nwtest {
namespace {

class RttHistogramTest : public KernelTest {};

TEST_P(RttHistogramTest, short_lossy_transfers_are_observed_at_their_final_srtt) {
  // --rtt-interval 10s, longer than any transfer here, even one whose SYN was lost (1 s): each
  // connection is observed exactly once. With 1 s, one that lived past it is also observed at
  // 1 s, at an srtt that no read of TCP_INFO here can be matched with.
  ASSERT_NO_FATAL_FAILURE(start_tracing(10'000'000'000));
  constexpr int kConnections = 12;
  constexpr size_t kBytes = 256 * 1024;
  const uint16_t server_port = port(64700);
  Fd listener = listen_on(AF_INET, server_port);
  NftTable nft;  // 5 % of the segments towards the server are lost: retransmissions, longer RTTs
  nft.add_rule("tcp dport " + std::to_string(server_port) + " numgen random mod 20 == 0 drop");

  // The server reads each connection to its end, then closes: the client sees EOF only after
  // its own FIN was acknowledged and the server's arrived, i.e. once its socket is closed.
  std::thread server([&] {
    for (int i = 0; i < kConnections; ++i) {
      Fd conn;
      try {
        conn = accept_one(listener.get(), 10s);
      } catch (const std::exception&) {
        return;  // the client side's assertions report the missing connections
      }
      char buf[16384];
      size_t got = 0;
      for (ssize_t n; got < kBytes && (n = recv(conn.get(), buf, sizeof(buf), 0)) > 0;) got += size_t(n);
      // Then it is busy for a while, as a server is: what arrives meanwhile is acknowledged by
      // the delayed-ACK timer (tcp_send_delayed_ack(); TCP_QUICKACK off, so not at once).
      int off = 0;
      setsockopt(conn.get(), IPPROTO_TCP, TCP_QUICKACK, &off, sizeof(off));
      std::this_thread::sleep_for(150ms);
      while (recv(conn.get(), buf, sizeof(buf), 0) > 0) {
      }
    }
  });

  std::vector<char> payload(16384, 'x');
  uint64_t rtt_sum_us = 0;
  int measured = 0;
  for (int i = 0; i < kConnections; ++i) {
    Fd client = connect_to(AF_INET, server_port);
    for (size_t sent = 0; sent < kBytes; sent += payload.size()) send_all(client.get(), payload.data(), payload.size());
    // A tail of small writes while the server is busy: Nagle holds each until the previous one
    // is acknowledged, late. Their RTT samples lift srtt well above the handshake's, so the
    // two cannot agree by chance.
    for (int i = 0; i < 3; ++i) send_all(client.get(), payload.data(), 100);
    shutdown(client.get(), SHUT_WR);
    char c;
    if (recv(client.get(), &c, 1, 0) != 0) break;  // EOF expected; the count check below fails
    KernelTcpInfo info = read_kernel_tcp_info(client.get());
    EXPECT_EQ(info.state, 7) << "TCP_CLOSE expected after the FIN exchange";  // tcp_time_wait() -> tcp_done()
    rtt_sum_us += info.rtt_us;
    ++measured;
  }
  server.join();
  ASSERT_EQ(measured, kConnections);

  auto outbound = [&](const Event& e) {
    return e.direction == netwatch::event::Direction::outbound && e.dport == server_port;
  };
  events_->wait_for([&](const Event& e) { return outbound(e) && e.type == EventType::close; }, kConnections, 10s);
  events_->settle();
  AgentTotals agent = agent_totals(events_->matching(outbound));

  // One observation per connection per interval, its final one included: the short ones once.
  ASSERT_EQ(agent.rtt_count, uint64_t(kConnections));
  const double kernel_mean_us = double(rtt_sum_us) / kConnections;
  const double agent_mean_us = double(agent.rtt_sum_ns) / 1000.0 / double(agent.rtt_count);
  std::printf("histogram mean %.1f us over %lu observations; TCP_INFO mean %.1f us over %d connections\n",
              agent_mean_us, static_cast<unsigned long>(agent.rtt_count), kernel_mean_us, kConnections);
  EXPECT_NEAR(agent_mean_us, kernel_mean_us, 0.10 * kernel_mean_us)
      << "netwatch_tcp_rtt_seconds mean " << agent_mean_us << " us over " << agent.rtt_count
      << " observations; TCP_INFO mean " << kernel_mean_us << " us over " << kConnections << " connections";
}

NW_ALL_COMBOS(RttHistogramTest);

}  // namespace
}  // namespace nwtest
