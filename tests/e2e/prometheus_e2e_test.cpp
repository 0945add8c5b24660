// A real Prometheus server scrapes the real agent while a connection loses packets; the
// retransmit ratio PromQL computes must agree with the socket's own TCP_INFO.
#include <gtest/gtest.h>

#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/harness.h"
#include "tests/support/kernel_tcp_info.h"
#include "tests/support/prometheus_server.h"

namespace nwtest {
namespace {

constexpr uint16_t kLossyPort = 62201;
constexpr uint16_t kAgentPort = 62290;
constexpr uint16_t kPrometheusPort = 62291;

TEST(PrometheusE2E, retransmit_ratio_in_promql_agrees_with_tcp_info) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
  AgentProcess agent(kAgentPort, {"--publish-interval", "200ms", "--drain-interval", "20ms"});
  PrometheusServer prometheus(kPrometheusPort, kAgentPort);

  Fd listener = listen_on(AF_INET, kLossyPort);
  Fd client = connect_to(AF_INET, kLossyPort);
  Fd server = accept_one(listener.get());
  NftTable nft;  // after the handshake: a dropped final ACK can hold up accept for seconds
  nft.add_rule("tcp dport " + std::to_string(kLossyPort) + " numgen random mod 10 == 0 counter drop");
  std::thread sink([&] {
    char buf[65536];
    while (recv(server.get(), buf, sizeof(buf), 0) > 0) {
    }
  });
  // Let Prometheus scrape the new flow at zero first, so increase() covers every segment.
  const std::string selector = "{direction=\"outbound\",port=\"" + std::to_string(kLossyPort) + "\"}";
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!prometheus.query("netwatch_tcp_segments_sent_total" + selector) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  std::this_thread::sleep_for(1500ms);

  std::string chunk(256 * 1024, 'x');
  for (int i = 0; i < 15; ++i) {  // ~3 s of lossy traffic across several scrapes
    send_all(client.get(), chunk.data(), chunk.size());
    std::this_thread::sleep_for(200ms);
  }
  shutdown(client.get(), SHUT_WR);
  sink.join();
  server.reset();
  char c;
  ASSERT_EQ(recv(client.get(), &c, 1, 0), 0);
  KernelTcpInfo info = read_kernel_tcp_info(client.get());
  for (int i = 0; i < 200 && info.state != 7; ++i) {  // TCP_CLOSE: final counters
    std::this_thread::sleep_for(10ms);
    info = read_kernel_tcp_info(client.get());
  }
  ASSERT_GT(info.total_retrans, 0u) << "no retransmission: the test proves nothing";
  const double truth = double(info.total_retrans) / double(info.segs_out);

  // The ratio of the counters Prometheus stored is the socket's own, exactly.
  const std::string counters = "sum(netwatch_tcp_retransmits_total" + selector +
                               ") / sum(netwatch_tcp_segments_sent_total" + selector + ")";
  // The query an SRE alerts on. rate() extrapolates each series toward the window's edges, and
  // toward zero differently when a series' first sample is not zero (the handshake's segments
  // may already be counted), so it agrees closely, not exactly.
  const std::string rates = "sum(rate(netwatch_tcp_retransmits_total" + selector +
                            "[1m])) / sum(rate(netwatch_tcp_segments_sent_total" + selector + "[1m]))";
  std::optional<double> exact, rated;
  deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto segs = prometheus.query("netwatch_tcp_segments_sent_total" + selector);
    exact = prometheus.query(counters);
    rated = prometheus.query(rates);
    if (exact && rated && segs && *segs == info.segs_out) break;  // the final scrape is in
    std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(exact && rated) << "PromQL returned nothing for " << counters << " or " << rates;
  EXPECT_NEAR(*exact, truth, truth * 1e-9) << "retransmits " << info.total_retrans << " / segments " << info.segs_out;
  EXPECT_NEAR(*rated, truth, truth * 0.01) << "retransmits " << info.total_retrans << " / segments " << info.segs_out;
}

}  // namespace
}  // namespace nwtest
