// The series budget (issue 18) against real traffic and the kernel's own counters: 3000 real
// connections, each from a loopback source address of its own to a loopback destination of its
// own on one service port, are 6000 flows (3000 peers each way). With default flags they must
// fit in 10,000 series, and every connect, segment, retransmission and byte must still add up to
// TCP_INFO across the folding. Then the churn breaker: a burst of new peers trips it, new peers
// fold, and detail comes back once the minute calms.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/tcp.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/harness.h"
#include "tests/support/kernel_tcp_info.h"

namespace nwtest {
namespace {

using SeriesLabels = std::map<std::string, std::string>;

// 127.<net>.<i / 250>.<i % 250 + 1>: a distinct loopback address per index (all of 127/8 is local).
in_addr_t flow_address(uint8_t net, int i) {
  return htonl(0x7f000000u | uint32_t(net) << 16 | uint32_t(i / 250) << 8 | uint32_t(i % 250 + 1));
}

std::string address_text(in_addr_t address) {
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &address, text, sizeof(text));
  return text;
}

sockaddr_in ipv4_endpoint(in_addr_t address, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = address;
  a.sin_port = htons(port);
  return a;
}

// One listener for every destination address: 0.0.0.0:port. The backlog holds a batch of
// connections made before any is accepted.
Fd listen_on_any(uint16_t port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = ipv4_endpoint(htonl(INADDR_ANY), port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd.get(), 4096) != 0)
    throw std::runtime_error("listen on port " + std::to_string(port) + ": " + strerror(errno));
  return fd;
}

// A connection from `from` (0: the kernel picks 127.0.0.1) to to:port.
Fd connect_from(in_addr_t from, in_addr_t to, uint16_t port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (from != 0) {
    sockaddr_in local = ipv4_endpoint(from, 0);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0)
      throw std::runtime_error("bind " + address_text(from) + ": " + strerror(errno));
  }
  sockaddr_in remote = ipv4_endpoint(to, port);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0)
    throw std::runtime_error("connect to " + address_text(to) + ": " + strerror(errno));
  return fd;
}

// What the kernel says about one side's sockets, summed.
struct SideTruth {
  uint64_t connections = 0, segments_sent = 0, retransmits = 0, bytes_sent = 0, bytes_received = 0;
  void add(const KernelTcpInfo& info) {
    ++connections;
    segments_sent += info.segs_out;
    retransmits += info.total_retrans;
    bytes_sent += info.bytes_sent;
    bytes_received += info.bytes_received;
  }
};

// A socket's final counters: once it is TCP_CLOSE (its fd still open) nothing more is sent.
KernelTcpInfo final_tcp_info(int fd) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  KernelTcpInfo info = read_kernel_tcp_info(fd);
  while (info.state != TCP_CLOSE && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
    info = read_kernel_tcp_info(fd);
  }
  if (info.state != TCP_CLOSE) throw std::runtime_error("a socket did not reach TCP_CLOSE");
  return info;
}

// Client and server half-close in turn; both sockets then reach TCP_CLOSE (the client's end
// goes on in TIME_WAIT without its fd) and their final counters go into the truth.
void finish_connection(Fd client, Fd server, SideTruth& outbound, SideTruth& inbound) {
  char c;
  shutdown(client.get(), SHUT_WR);
  if (recv(server.get(), &c, 1, 0) != 0) throw std::runtime_error("the server did not see the client's FIN");
  shutdown(server.get(), SHUT_WR);
  if (recv(client.get(), &c, 1, 0) != 0) throw std::runtime_error("the client did not see the server's FIN");
  outbound.add(final_tcp_info(client.get()));
  inbound.add(final_tcp_info(server.get()));
}

// Request and response of `bytes` each, then the close.
void exchange_and_finish(Fd client, Fd server, size_t bytes, SideTruth& outbound, SideTruth& inbound) {
  std::string buf(bytes, 'q');
  send_all(client.get(), buf.data(), buf.size());
  recv_exact(server.get(), buf.data(), buf.size());
  send_all(server.get(), buf.data(), buf.size());
  recv_exact(client.get(), buf.data(), buf.size());
  finish_connection(std::move(client), std::move(server), outbound, inbound);
}


double gauge_of(const std::vector<Sample>& samples, const std::string& name) {
  return find_sample(samples, name, {}).value_or(-1);
}

size_t sample_lines(const std::string& text) {
  size_t lines = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos && text[pos] != '#') ++lines;
    pos = end + 1;
  }
  return lines;
}

// Like wait_until, at a pace that suits a scrape of /metrics.
template <typename Pred>
bool scrape_until(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(250ms);
  }
  return true;
}

class SeriesBudgetE2E : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test"; }
};

// The agent with default flags (its churn breaker does not count what it finds in its first
// minute, so the series budget's stages alone have to hold the 6000 flows).
TEST_F(SeriesBudgetE2E, six_thousand_real_flows_fit_the_default_budget_and_every_count_is_exact) {
  const uint16_t service = 63601;
  const int connections = 3000, lossy = 200;
  AgentProcess defaults(63690, {"--publish-interval", "200ms", "--drain-interval", "20ms"});
  std::pair<AgentProcess*, const char*> agents[] = {{&defaults, "default flags"}};

  Fd listener = listen_on_any(service);
  SideTruth outbound, inbound;
  // The first connections under 10 % input loss on the service port (after their handshakes,
  // so no SYN or final ACK is lost): 20 small segments each, sent at once and left unread until
  // the kernel has every one acknowledged, retransmissions included.
  {
    std::vector<std::pair<Fd, Fd>> held;
    for (int i = 0; i < lossy; ++i) {
      Fd client = connect_from(flow_address(10, i), flow_address(20, i), service);
      held.emplace_back(std::move(client), accept_one(listener.get()));
    }
    {
      NftTable nft;
      nft.add_rule("tcp dport " + std::to_string(service) + " numgen random mod 10 == 0 counter drop");
      char chunk[100] = {};
      for (auto& [client, server] : held) {
        int one = 1;
        setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        for (int k = 0; k < 20; ++k) send_all(client.get(), chunk, sizeof(chunk));
      }
      for (auto& [client, server] : held)
        ASSERT_TRUE(wait_until([&] { return read_kernel_tcp_info(client.get()).unacked == 0; }, 30s))
            << "a lossy connection's data was never acknowledged";
    }
    for (auto& [client, server] : held) {
      char data[2000];
      recv_exact(server.get(), data, sizeof(data));
      send_all(server.get(), data, 100);
      recv_exact(client.get(), data, 100);
      finish_connection(std::move(client), std::move(server), outbound, inbound);
    }
  }
  ASSERT_GT(outbound.retransmits, 0u) << "the loss rule caused no retransmission: the test proves nothing";
  for (int i = lossy; i < connections; ++i) {
    Fd client = connect_from(flow_address(10, i), flow_address(20, i), service);
    Fd server = accept_one(listener.get());
    exchange_and_finish(std::move(client), std::move(server), 1000, outbound, inbound);
  }
  ASSERT_EQ(outbound.connections, uint64_t(connections));

  const std::string port = std::to_string(service);
  const SeriesLabels out = {{"direction", "outbound"}, {"port", port}}, in = {{"direction", "inbound"}, {"port", port}};
  auto with_ok = [](SeriesLabels l) {
    l["result"] = "ok";
    return l;
  };
  struct Check {
    const char* name;
    SeriesLabels labels;
    double want;
  };
  const std::vector<Check> checks = {
      {"netwatch_tcp_connects_total", with_ok(out), double(connections)},
      {"netwatch_tcp_connects_total", with_ok(in), double(connections)},
      {"netwatch_tcp_segments_sent_total", out, double(outbound.segments_sent)},
      {"netwatch_tcp_segments_sent_total", in, double(inbound.segments_sent)},
      {"netwatch_tcp_retransmits_total", out, double(outbound.retransmits)},
      {"netwatch_tcp_retransmits_total", in, double(inbound.retransmits)},
      {"netwatch_tcp_bytes_sent_total", out, double(outbound.bytes_sent)},
      {"netwatch_tcp_bytes_sent_total", in, double(inbound.bytes_sent)},
      {"netwatch_tcp_bytes_received_total", out, double(outbound.bytes_received)},
      {"netwatch_tcp_bytes_received_total", in, double(inbound.bytes_received)},
  };
  for (auto [agent, name] : agents) {
    SCOPED_TRACE(name);
    std::string text;
    std::vector<Sample> samples;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    bool settled = false;
    while (!settled && std::chrono::steady_clock::now() < deadline) {
      text = agent->metrics_text();
      samples = parse_exposition(text);
      settled = true;
      for (const Check& c : checks) settled &= sum_samples(samples, c.name, c.labels) == c.want;
      if (!settled) std::this_thread::sleep_for(200ms);
    }
    for (const Check& c : checks)
      EXPECT_EQ(sum_samples(samples, c.name, c.labels), c.want) << c.name << " of the " << c.labels.at("direction")
                                                                << " flows";

    // The whole exposition is within the budget, and netwatch_series says how big it is.
    const double series = gauge_of(samples, "netwatch_series");
    EXPECT_LE(series, 10000);
    EXPECT_EQ(series, double(sample_lines(text)));
    EXPECT_EQ(gauge_of(samples, "netwatch_series_budget"), 10000);
    EXPECT_GE(gauge_of(samples, "netwatch_series_budget_stage"), 1);
    // A fresh agent's first minute is not churn: the budget's stages alone hold these flows.
    EXPECT_EQ(gauge_of(samples, "netwatch_series_churn_trips_total"), 0);
    EXPECT_GT(gauge_of(samples, "netwatch_series_budget_folded_total"), 0);
    // Folded peers keep the port: with one service port the peer level is as far as it goes.
    EXPECT_GT(sum_samples(samples, "netwatch_tcp_connects_total", {{"port", port}, {"peer", "other"}}), 0);
    for (const Sample& s : samples) {
      auto p = s.labels.find("port");
      EXPECT_FALSE(p != s.labels.end() && p->second == "other") << s.name << ": the port was folded too";
    }
    // One RTT histogram for the service, filled, and without a peer label.
    size_t rtt_counts = 0;
    for (const Sample& s : samples) {
      if (s.name.rfind("netwatch_tcp_rtt_seconds", 0) != 0 && s.name.rfind("netwatch_tcp_connect_duration_seconds", 0) != 0)
        continue;
      EXPECT_EQ(s.labels.count("peer"), 0u) << s.name << " has a peer label";
      if (s.name == "netwatch_tcp_rtt_seconds_count" && s.labels.at("direction") == "outbound" &&
          s.labels.at("port") == port) {
        ++rtt_counts;
        EXPECT_GT(s.value, 0);
      }
    }
    EXPECT_EQ(rtt_counts, 1u);

    auto start = std::chrono::steady_clock::now();
    agent->metrics_text();  // one more GET, timed: the render and the transfer
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << "[ series   ] " << name << ": " << series << " series, " << text.size() << " bytes of /metrics, "
              << "stage " << gauge_of(samples, "netwatch_series_budget_stage") << ", "
              << gauge_of(samples, "netwatch_flows") << " flows, " << gauge_of(samples, "netwatch_services")
              << " services, breaker trips " << gauge_of(samples, "netwatch_series_churn_trips_total") << ", GET "
              << ms << " ms; kernel: " << outbound.retransmits << " retransmits outbound, "
              << outbound.segments_sent << " + " << inbound.segments_sent << " segments\n";
    RecordProperty("series", int(series));
    RecordProperty("bytes", int(text.size()));
  }
}

// --max-new-flows-per-minute 200 and 300 new peers within a second or two: the breaker trips,
// later peers fold (counts exact), known peers keep their flows; after a quiet minute it resets
// and a brand-new peer gets its own flow again.
TEST_F(SeriesBudgetE2E, churn_breaker_folds_a_burst_of_new_peers_and_gives_detail_back_when_it_calms) {
  const uint16_t service = 63611;
  const int burst = 300;
  AgentProcess agent(63692, {"--max-new-flows-per-minute", "200", "--publish-interval", "100ms", "--drain-interval",
                             "20ms"});
  Fd listener = listen_on_any(service);
  // The breaker counts from a minute after the agent starts: what it finds at first is the node.
  std::this_thread::sleep_for(62s);
  // Clients leave the source to the kernel (127.0.0.1): their inbound ends are one flow.
  auto connect_once = [&](in_addr_t peer) {
    Fd client = connect_from(0, peer, service);
    Fd server = accept_one(listener.get());
  };
  for (int i = 0; i < burst; ++i) connect_once(flow_address(30, i));

  const std::string port = std::to_string(service);
  const SeriesLabels out_ok = {{"direction", "outbound"}, {"port", port}, {"result", "ok"}};
  auto peer_connects = [&](const std::vector<Sample>& samples, const std::string& peer) {
    SeriesLabels l = out_ok;
    l["peer"] = peer;
    return sum_samples(samples, "netwatch_tcp_connects_total", l);
  };
  std::vector<Sample> samples;
  ASSERT_TRUE(scrape_until(
      [&] {
        samples = agent.metrics();
        return sum_samples(samples, "netwatch_tcp_connects_total", out_ok) == burst;
      },
      10s))
      << "the agent did not count " << burst << " connects";
  EXPECT_EQ(gauge_of(samples, "netwatch_series_churn_breaker"), 1);
  EXPECT_EQ(gauge_of(samples, "netwatch_series_churn_threshold"), 200);
  EXPECT_GE(gauge_of(samples, "netwatch_series_churn_trips_total"), 1);
  int detailed = 0;
  for (int i = 0; i < burst; ++i) detailed += peer_connects(samples, address_text(flow_address(30, i))) == 1;
  // Past 200 new keys (the inbound flow and the scrapes' own among them) new peers fold. The
  // breaker remembers keys in a bitmap of hashes: a rare new key passes for a seen one and is
  // not counted.
  EXPECT_LE(detailed, 200 + 3);
  EXPECT_GE(detailed, 150);
  EXPECT_EQ(peer_connects(samples, "other"), burst - detailed);
  EXPECT_EQ(peer_connects(samples, address_text(flow_address(30, 0))), 1) << "the first peer was folded";
  std::cout << "[ series   ] " << detailed << " of " << burst << " new peers kept their own flow, "
            << gauge_of(samples, "netwatch_new_flow_keys_total") << " new keys counted\n";

  // While it is tripped, a peer that has its flow keeps it.
  connect_once(flow_address(30, 0));
  EXPECT_TRUE(scrape_until([&] { return peer_connects(agent.metrics(), address_text(flow_address(30, 0))) == 2; }, 5s));

  // A peer folded in the burst, coming back while it is tripped, stays folded.
  const in_addr_t folded_peer = flow_address(30, burst - 1);
  ASSERT_EQ(peer_connects(samples, address_text(folded_peer)), 0) << "the last peer of the burst was not folded";
  const double others = peer_connects(samples, "other");
  connect_once(folded_peer);
  EXPECT_TRUE(scrape_until([&] { return peer_connects(agent.metrics(), "other") == others + 1; }, 5s));
  EXPECT_EQ(peer_connects(agent.metrics(), address_text(folded_peer)), 0) << "a folded peer got a flow while tripped";

  // Quiet: it resets once the last minute holds fewer than 100 new keys.
  auto quiet_from = std::chrono::steady_clock::now();
  ASSERT_TRUE(scrape_until([&] { return gauge_of(agent.metrics(), "netwatch_series_churn_breaker") == 0; }, 90s))
      << "the breaker did not reset after 90 quiet seconds";
  std::cout << "[ series   ] the breaker reset after "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - quiet_from).count()
            << " s of quiet\n";

  const in_addr_t fresh = flow_address(31, 0);
  connect_once(fresh);
  EXPECT_TRUE(scrape_until([&] { return peer_connects(agent.metrics(), address_text(fresh)) == 1; }, 5s))
      << "a new peer after the reset did not get a flow of its own";
  samples = agent.metrics();
  EXPECT_EQ(sum_samples(samples, "netwatch_tcp_connects_total", out_ok), burst + 3);
  EXPECT_EQ(gauge_of(samples, "netwatch_series_churn_breaker"), 0);
}

}  // namespace
}  // namespace nwtest
