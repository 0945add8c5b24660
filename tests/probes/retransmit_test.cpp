// Retransmissions and the close summary of one real connection that loses packets: the
// numbers must be the kernel's own (TCP_INFO of the test's socket), not a re-count.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "tests/support/harness.h"
#include "tests/support/kernel_tcp_info.h"

namespace nwtest {
namespace {

class RetransmitTest : public KernelTest {};

// The host-wide retransmitted-segment counter (TCP_MIB_RETRANSSEGS), as nstat reads it.
uint64_t host_retrans_segs() {
  FILE* pipe = popen("nstat -asz TcpRetransSegs", "r");
  if (!pipe) throw std::runtime_error("popen nstat failed");
  char name[64] = {};
  unsigned long long value = 0;
  bool found = false;
  char line[256];
  while (fgets(line, sizeof(line), pipe))
    if (sscanf(line, "%63s %llu", name, &value) == 2 && std::string(name) == "TcpRetransSegs") found = true;
  if (pclose(pipe) != 0 || !found) throw std::runtime_error("nstat -asz TcpRetransSegs failed");
  return value;
}

TEST_P(RetransmitTest, segments_and_close_summary_match_tcp_info) {
  ASSERT_NO_FATAL_FAILURE(start_tracing());
  const uint16_t server_port = port(61400);
  Fd listener = listen_on(AF_INET, server_port);
  Fd client = tcp_socket(AF_INET);
  // Asked before connect(), so the classic tracepoint variant finds the cookie too.
  const uint64_t cookie = socket_cookie(client.get());
  const uint64_t connect_started = monotonic_ns();
  ASSERT_EQ(connect_loopback(client.get(), AF_INET, server_port), 0);
  const uint16_t client_port = local_port(client.get());
  Fd server = accept_one(listener.get());

  std::atomic<uint64_t> received{0};
  SocketThread sink(server.get(), [&](int fd) {
    char buf[65536];
    for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) received += static_cast<uint64_t>(n);
  });

  const uint64_t host_before = host_retrans_segs();
  uint64_t sent = 0, dropped = 0;
  {
    // Loss only after the handshake, only towards the server, only segments with payload: the
    // client's data (a zero-window probe carries none and is never retransmitted).
    NftTable nft;
    uint64_t rule = nft.add_rule("tcp dport " + std::to_string(server_port) +
                                 " ip length gt 100 numgen random mod 10 == 0 counter drop");
    std::string chunk(64 * 1024, 'x');
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      send_all(client.get(), chunk.data(), chunk.size());
      sent += chunk.size();
      if (sent >= (2u << 20) && read_kernel_tcp_info(client.get()).total_retrans >= 5) break;
    }
    dropped = nft.packets(rule);
  }  // the table is gone: the rest of the connection is loss-free

  ASSERT_TRUE(wait_until([&] { return read_kernel_tcp_info(client.get()).unacked == 0 && received == sent; }, 10s))
      << "the data was never all acknowledged after the loss rule went away";
  const KernelTcpInfo after_loss = read_kernel_tcp_info(client.get());
  RecordProperty("drops", std::to_string(dropped));
  RecordProperty("total_retrans", std::to_string(after_loss.total_retrans));
  // Not total_retrans >= drops: the kernel may send two dropped segments again as one
  // (tcp_retrans_try_collapse), which counts once. CI saw 8 for 9 drops, and 13 for 14.
  ASSERT_GT(dropped, 0u) << "the loss rule dropped nothing: the test proves nothing";
  ASSERT_GT(after_loss.total_retrans, 0u) << dropped << " drops and nothing was retransmitted";

  // Retransmit events of this socket add up to tcpi_total_retrans, and each carries the
  // socket's running total.
  auto is_retransmit = of_type_with_cookie(EventType::retransmit, cookie);
  auto sum_segs = [](const std::vector<Event>& evs) {
    uint64_t sum = 0;
    for (const Event& e : evs) sum += e.segs;
    return sum;
  };
  ASSERT_TRUE(wait_until([&] { return sum_segs(events_->matching(is_retransmit)) >= after_loss.total_retrans; }, 5s));
  events_->settle();
  std::vector<Event> retransmits = events_->matching(is_retransmit);
  EXPECT_EQ(sum_segs(retransmits), after_loss.total_retrans) << retransmits.size() << " retransmit events";
  std::sort(retransmits.begin(), retransmits.end(), [](const Event& a, const Event& b) { return a.ts_ns < b.ts_ns; });
  uint64_t running = 0;
  for (const Event& e : retransmits) {
    running += e.segs;
    EXPECT_GT(e.segs, 0u);
    EXPECT_EQ(e.stats.total_retrans, running);
    EXPECT_EQ(e.sport, client_port);
    EXPECT_EQ(e.dport, server_port);
    EXPECT_EQ(e.pid, static_cast<uint32_t>(getpid()));
  }
  // nstat counts the whole host: other traffic can only add to it.
  EXPECT_GE(host_retrans_segs() - host_before, after_loss.total_retrans);

  // A reply, so the client has received bytes to report; then wait until its ACK has reached
  // the server, so no delayed ACK leaves the client between our TCP_INFO and close().
  std::string reply(100, 'r');
  send_all(server.get(), reply.data(), reply.size());
  recv_exact(client.get(), reply.data(), reply.size());
  ASSERT_TRUE(wait_until([&] { return read_kernel_tcp_info(server.get()).unacked == 0; }, 5s));

  const KernelTcpInfo before_close = read_kernel_tcp_info(client.get());
  client.reset();
  sink.join();     // the client's FIN ends the sink
  server.reset();  // our FIN: the client goes to TIME_WAIT, its sock to TCP_CLOSE

  auto is_close = of_type_with_cookie(EventType::close, cookie);
  events_->wait_for(is_close, 1);
  events_->settle();
  const uint64_t close_seen = monotonic_ns();
  std::vector<Event> closes = events_->matching(is_close);
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].pid, static_cast<uint32_t>(getpid()));
  EXPECT_GT(closes[0].duration_ns, 0u);
  EXPECT_LE(closes[0].duration_ns, close_seen - connect_started);
  const netwatch::event::TcpStats& s = closes[0].stats;
  EXPECT_EQ(s.total_retrans, before_close.total_retrans);
  EXPECT_EQ(s.bytes_sent, before_close.bytes_sent);
  // Both byte counters move with the sequence space, and a FIN takes one sequence number:
  // the server's ACK of our FIN adds 1 to bytes_acked (tcp_snd_una_update()), the server's FIN
  // adds 1 to bytes_received (tcp_rcv_nxt_update()). Both happen before the sock reaches
  // TCP_CLOSE, which it cannot do without them. (The SYN is the 1 already in bytes_acked.)
  EXPECT_EQ(s.bytes_acked, before_close.bytes_acked + 1);
  EXPECT_EQ(s.bytes_received, before_close.bytes_received + 1);
  // close() sends our FIN, and the ACK of the server's FIN leaves before the sock reaches
  // TCP_CLOSE (tcp_fin(): tcp_send_ack() then tcp_time_wait()): at most two more segments.
  EXPECT_GE(s.segs_out, before_close.segs_out);
  EXPECT_LE(s.segs_out, before_close.segs_out + 2);
  EXPECT_EQ(closes[0].sport, client_port);
  EXPECT_EQ(closes[0].dport, server_port);
}

NW_ALL_COMBOS(RetransmitTest);

}  // namespace
}  // namespace nwtest
