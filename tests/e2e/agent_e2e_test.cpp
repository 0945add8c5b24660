// The real agent against real traffic: /metrics must equal what the kernel says about the
// test's own sockets (TCP_INFO), for IPv4 and IPv6.
#include <gtest/gtest.h>
#include <netinet/tcp.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/harness.h"
#include "tests/support/kernel_tcp_info.h"

namespace nwtest {
namespace {

// A whole connection: connect, send `bytes`, half-close, and wait for the peer's FIN. The
// client socket then is TCP_CLOSE (in TIME_WAIT, its close event already fired) and TCP_INFO
// holds its final counters: the FIN and the last ACK included.
KernelTcpInfo run_connection(int family, int listen_fd, uint16_t port, size_t bytes,
                             const std::function<void()>& after_handshake = {}) {
  Fd client = connect_to(family, port);
  Fd server = accept_one(listen_fd);
  if (after_handshake) after_handshake();
  std::thread sink([&] {
    char buf[65536];
    while (recv(server.get(), buf, sizeof(buf), 0) > 0) {
    }
    server.reset();
  });
  std::string payload(bytes, 'x');
  send_all(client.get(), payload.data(), payload.size());
  shutdown(client.get(), SHUT_WR);
  char c;
  EXPECT_EQ(recv(client.get(), &c, 1, 0), 0);
  sink.join();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  KernelTcpInfo info = read_kernel_tcp_info(client.get());
  while (info.state != TCP_CLOSE && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
    info = read_kernel_tcp_info(client.get());
  }
  EXPECT_EQ(info.state, TCP_CLOSE);
  return info;
}

using Labels = std::map<std::string, std::string>;

// Polls /metrics until every expectation holds or the deadline passes; returns the last text.
std::string wait_for_metrics(AgentProcess& agent, const std::vector<std::pair<std::string, Labels>>& names,
                             const std::vector<double>& want) {
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    text = agent.metrics_text();
    auto samples = parse_exposition(text);
    bool all = true;
    for (size_t i = 0; i < names.size(); ++i) {
      auto v = find_sample(samples, names[i].first, names[i].second);
      all &= v && *v == want[i];
    }
    if (all) break;
    std::this_thread::sleep_for(100ms);
  }
  return text;
}

class AgentE2E : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test"; }
  int family() const { return GetParam(); }
  uint16_t port(uint16_t base) const { return static_cast<uint16_t>(base + (family() == AF_INET6 ? 50 : 0)); }
};

TEST_P(AgentE2E, metrics_equal_the_kernel_ground_truth) {
  const uint16_t service = port(62101), closed = port(62102), lossy = port(62103);
  // The IPv6 run serves and scrapes on [::1] too: --listen takes IPv6.
  AgentProcess agent(port(62190), {"--publish-interval", "100ms", "--drain-interval", "20ms"}, loopback_text(family()));
  const std::string peer = loopback_text(family());

  // Clean connections, refused connects, and one transfer under 10 % input loss.
  Fd listener = listen_on(family(), service);
  uint64_t clean_segs_out = 0;
  for (int i = 0; i < 5; ++i) {
    KernelTcpInfo info = run_connection(family(), listener.get(), service, 20000);
    clean_segs_out += info.segs_out;
  }
  Fd closed_port = bind_only(family(), closed);
  for (int i = 0; i < 3; ++i) {
    Fd s = tcp_socket(family());
    EXPECT_EQ(connect_loopback(s.get(), family(), closed), ECONNREFUSED);
  }
  Fd lossy_listener = listen_on(family(), lossy);
  KernelTcpInfo lossy_info;
  {
    NftTable nft;
    // Loss after the handshake: a dropped final ACK can hold up accept for seconds.
    lossy_info = run_connection(family(), lossy_listener.get(), lossy, 4 << 20, [&] {
      nft.add_rule("tcp dport " + std::to_string(lossy) + " numgen random mod 10 == 0 counter drop");
    });
  }
  ASSERT_GT(lossy_info.total_retrans, 0u) << "the loss rule caused no retransmission: the test proves nothing";

  Labels out_service = {{"direction", "outbound"}, {"peer", peer}, {"port", std::to_string(service)}};
  Labels in_service = {{"direction", "inbound"}, {"peer", peer}, {"port", std::to_string(service)}};
  Labels out_closed = {{"direction", "outbound"}, {"peer", peer}, {"port", std::to_string(closed)}};
  Labels out_lossy = {{"direction", "outbound"}, {"peer", peer}, {"port", std::to_string(lossy)}};
  auto with = [](Labels l, const std::string& k, const std::string& v) {
    l[k] = v;
    return l;
  };
  std::vector<std::pair<std::string, Labels>> names = {
      {"netwatch_tcp_connects_total", with(out_service, "result", "ok")},
      {"netwatch_tcp_connects_total", with(in_service, "result", "ok")},
      {"netwatch_tcp_connects_total", with(out_closed, "result", "refused")},
      {"netwatch_tcp_segments_sent_total", out_service},
      {"netwatch_tcp_retransmits_total", out_service},
      {"netwatch_tcp_retransmits_total", out_lossy},
      {"netwatch_tcp_segments_sent_total", out_lossy},
      {"netwatch_tcp_active_connections", out_service},
  };
  std::vector<double> want = {5, 5, 3, double(clean_segs_out), 0, double(lossy_info.total_retrans),
                              double(lossy_info.segs_out), 0};
  std::string text = wait_for_metrics(agent, names, want);
  auto samples = parse_exposition(text);
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_EQ(find_sample(samples, names[i].first, names[i].second), want[i]) << names[i].first;
  EXPECT_EQ(find_sample(samples, "netwatch_events_lost_total", {{"type", "rtt"}}), 0.0);

  // It did all of that holding no capability: they are dropped once the probes are attached.
  std::ifstream status("/proc/" + std::to_string(agent.process().pid()) + "/status");
  std::string line, cap_eff;
  while (std::getline(status, line))
    if (line.rfind("CapEff:", 0) == 0) cap_eff = line;
  EXPECT_EQ(cap_eff, "CapEff:\t0000000000000000");

  // promtool, the real linter, accepts the exposition.
  std::string path = ::testing::TempDir() + "/netwatch-metrics.txt";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs(text.c_str(), f);
  fclose(f);
  EXPECT_EQ(system(("promtool check metrics < " + path + " > /dev/null").c_str()), 0) << "promtool rejected /metrics";
}

TEST_P(AgentE2E, snapshot_lists_a_live_connection_with_its_rtt) {
  const uint16_t service = port(62111);
  AgentProcess agent(port(62191), {"--publish-interval", "100ms", "--rtt-interval", "50ms", "--drain-interval", "20ms"});
  Fd listener = listen_on(family(), service);
  Fd client = tcp_socket(family());
  // Before connect(): where the probes cannot ask for the cookie (before 5.12) they find it made.
  uint64_t cookie = socket_cookie(client.get());
  ASSERT_EQ(connect_loopback(client.get(), family(), service), 0);
  Fd server = accept_one(listener.get());
  char buf[64] = {};
  nlohmann::json found;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (found.is_null() && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 10; ++i) {  // ping-pong: the client receives, so its ACK path fires
      send_all(client.get(), buf, sizeof(buf));
      recv_exact(server.get(), buf, sizeof(buf));
      send_all(server.get(), buf, sizeof(buf));
      recv_exact(client.get(), buf, sizeof(buf));
      std::this_thread::sleep_for(10ms);
    }
    nlohmann::json snapshot = agent.connections();  // a range-for over a temporary's member dangles
    for (const auto& c : snapshot["connections"])
      if (c["cookie"] == cookie && c["srtt_us"].get<uint32_t>() > 0) found = c;
  }
  ASSERT_FALSE(found.is_null()) << "connection " << cookie << " never appeared with an RTT";
  KernelTcpInfo info = read_kernel_tcp_info(client.get());
  EXPECT_EQ(found["state"], "ESTABLISHED");
  EXPECT_EQ(found["direction"], "outbound");
  EXPECT_EQ(found["remote_port"], service);
  EXPECT_EQ(found["local_port"], local_port(client.get()));
  EXPECT_EQ(found["pid"], getpid());
  // Loopback srtt is tens of microseconds and jitters; the sample and TCP_INFO are both the
  // kernel's smoothed value, taken moments apart: same order of magnitude.
  double srtt = found["srtt_us"].get<double>();
  EXPECT_GT(srtt, 0);
  EXPECT_LT(srtt, std::max<double>(10.0 * info.rtt_us, 2000.0));
  client.reset();  // the client closes first: TIME_WAIT stays on its ephemeral port, not on ours
}

INSTANTIATE_TEST_SUITE_P(, AgentE2E, ::testing::Values(AF_INET, AF_INET6),
                         [](const ::testing::TestParamInfo<int>& p) { return p.param == AF_INET ? "ipv4" : "ipv6"; });

}  // namespace
}  // namespace nwtest
