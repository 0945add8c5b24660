// The caps that need real sockets to reach, driven past with real connections: the agent's
// connection table (--max-connections), its series budget (--max-flows) and ?limit= on
// /api/v1/connections, read back from the real agent's /metrics and API; and the per-socket
// state table in the kernel (65536 in production; small here), read from the kernel counters the
// agent exports as netwatch_untracked_sockets_total and netwatch_state_table_spills_total. The pure caps are
// driven past in tests/unit/serve/bounds_test.cpp.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "util/log.h"
#include "tests/support/agent_process.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

// A listener on 127.2.0.<host>:port: each host is a distinct outbound peer (all of 127/8 is local).
Fd listen_on_host(int host, uint16_t port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(0x7f020000u | host);
  addr.sin_port = htons(port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd.get(), 8) != 0)
    throw std::runtime_error("listen on 127.2.0." + std::to_string(host) + ": " + strerror(errno));
  return fd;
}

Fd connect_to_host(int host, uint16_t port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(0x7f020000u | host);
  addr.sin_port = htons(port);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    throw std::runtime_error("connect to 127.2.0." + std::to_string(host) + ": " + strerror(errno));
  return fd;
}

double value_or(const std::vector<Sample>& samples, const std::string& name,
                const std::map<std::string, std::string>& labels = {}) {
  return find_sample(samples, name, labels).value_or(-1);
}

class Bounds : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test"; }
};

// 30 live connections (60 tracked sockets: both ends) into a table of 16. Other tests' traffic on
// the machine only adds evictions, so the bounds below hold however busy it is.
TEST_F(Bounds, agent_past_max_connections_evicts_the_least_recent_and_says_so) {
  const uint16_t service = 63101;
  AgentProcess agent(63190, {"--max-connections", "16", "--publish-interval", "100ms", "--drain-interval", "20ms"});
  Fd listener = listen_on(AF_INET, service);
  std::vector<std::pair<Fd, Fd>> pairs;
  for (int i = 0; i < 30; ++i) {
    Fd client = connect_to(AF_INET, service);
    pairs.emplace_back(std::move(client), accept_one(listener.get()));
  }
  // The last connection opened is among the most recently active: it must survive.
  uint64_t newest = socket_cookie(pairs.back().first.get());
  std::vector<Sample> samples;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    samples = agent.metrics();
    if (value_or(samples, "netwatch_connection_evictions_total", {{"reason", "capacity"}}) >= 60 - 16) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(value_or(samples, "netwatch_connection_evictions_total", {{"reason", "capacity"}}), 60 - 16);
  EXPECT_LE(value_or(samples, "netwatch_tracked_connections"), 16);
  EXPECT_EQ(value_or(samples, "netwatch_tracked_connections_limit"), 16);
  // Every handshake is counted in its flow even though most connections were evicted.
  EXPECT_EQ(value_or(samples, "netwatch_tcp_connects_total",
                     {{"direction", "outbound"}, {"port", std::to_string(service)}, {"result", "ok"}}),
            30);

  nlohmann::json snapshot = agent.connections();
  EXPECT_LE(snapshot["connections_total"].get<int>(), 16);
  EXPECT_LE(snapshot["connections"].size(), 16u);
  bool found = false;
  for (const auto& c : snapshot["connections"]) found |= c["cookie"] == newest;
  EXPECT_TRUE(found) << "the most recent connection was evicted: " << snapshot.dump();
}

TEST_F(Bounds, api_limit_truncates_and_out_of_range_limits_are_refused) {
  const uint16_t service = 63111;
  AgentProcess agent(63191, {"--publish-interval", "100ms", "--drain-interval", "20ms"});
  Fd listener = listen_on(AF_INET, service);
  std::vector<std::pair<Fd, Fd>> pairs;
  for (int i = 0; i < 10; ++i) {
    Fd client = connect_to(AF_INET, service);
    pairs.emplace_back(std::move(client), accept_one(listener.get()));
  }
  std::string body;
  nlohmann::json j;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  do {  // until the agent has seen our 20 ends
    ASSERT_EQ(http_get("127.0.0.1", agent.port(), "/api/v1/connections?limit=3", &body), 200);
    j = nlohmann::json::parse(body);
  } while (j["connections_total"].get<int>() < 20 && std::chrono::steady_clock::now() < deadline &&
           (std::this_thread::sleep_for(100ms), true));
  EXPECT_GE(j["connections_total"].get<int>(), 20);
  EXPECT_EQ(j["connections"].size(), 3u);
  EXPECT_TRUE(j["connections_truncated"].get<bool>());
  ASSERT_EQ(http_get("127.0.0.1", agent.port(), "/api/v1/connections?limit=100000", &body), 200);
  EXPECT_FALSE(nlohmann::json::parse(body)["connections_truncated"].get<bool>());
  for (const char* bad : {"limit=0", "limit=100001", "limit=-1", "limit=1e3", "limit=", "limit=5&limit=6"}) {
    EXPECT_EQ(http_get("127.0.0.1", agent.port(), std::string("/api/v1/connections?") + bad, &body), 400) << bad;
    EXPECT_NE(body.find("\"error\""), std::string::npos) << bad;
  }
}

// 40 peers, each one outbound flow, into a budget of 10: the flows stay within the hard cap
// (budget + one catch-all per direction), detail folds into peer="other", and it is counted.
TEST_F(Bounds, agent_past_max_flows_folds_peers_and_counts_the_folding) {
  const uint16_t service = 63121;
  const int peers = 40;
  AgentProcess agent(63192, {"--max-flows", "10", "--publish-interval", "100ms", "--drain-interval", "20ms"});
  for (int host = 1; host <= peers; ++host) {
    Fd listener = listen_on_host(host, service);
    Fd client = connect_to_host(host, service);
    Fd server = accept_one(listener.get());
  }
  std::vector<Sample> samples;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    samples = agent.metrics();
    if (value_or(samples, "netwatch_series_budget_folded_total") >= peers - 8) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(value_or(samples, "netwatch_series_budget_folded_total"), peers - 8);
  EXPECT_LE(value_or(samples, "netwatch_flows"), 10 + 3);
  EXPECT_GE(value_or(samples, "netwatch_series_budget_stage"), 1);
  EXPECT_EQ(value_or(samples, "netwatch_series_budget_flows"), 10);
  EXPECT_TRUE(find_sample(samples, "netwatch_tcp_connects_total", {{"direction", "outbound"}, {"peer", "other"}}))
      << "no folded flow in /metrics";
  int detailed = 0;  // our peers that kept a flow of their own: at most the budget's 80 %
  for (int host = 1; host <= peers; ++host)
    detailed += find_sample(samples, "netwatch_tcp_connects_total",
                            {{"direction", "outbound"}, {"peer", "127.2.0." + std::to_string(host)}})
                    .has_value();
  EXPECT_LE(detailed, 8);
}

// The tracepoint variant keeps per-socket state in a hash map (sk_storage needs tp_btf): past its
// cap new sockets are not tracked and are counted; closing frees the entries for new sockets.
TEST_F(Bounds, tracepoint_state_table_past_its_cap_counts_untracked_sockets_and_frees_on_close) {
  const uint16_t service = 63131;
  const uint32_t cap = 64;
  const int held = 100;  // 200 sockets (both ends) into 64 entries
  netwatch::kernel::ProbeOptions options;
  options.variant = netwatch::kernel::AttachVariant::tracepoint;
  options.sock_table_entries = cap;
  std::unique_ptr<netwatch::kernel::ProbeSet> probes;
  ASSERT_NO_FATAL_FAILURE(start_probes(options, netwatch::kernel::AttachVariant::tracepoint, probes));
  EventCollector events(*probes, 20);
  uint64_t before = probes->counters().state_full;
  Fd listener = listen_on(AF_INET, service);
  {
    std::vector<std::pair<Fd, Fd>> pairs;
    for (int i = 0; i < held; ++i) {
      Fd client = connect_to(AF_INET, service);
      pairs.emplace_back(std::move(client), accept_one(listener.get()));
    }
    events.settle();
    // At most `cap` of our 200 sockets got an entry (others' sockets may hold some too).
    EXPECT_GE(probes->counters().state_full - before, uint64_t(2 * held - cap));
    EXPECT_LE(events.matching(of_type_on_port(EventType::connect, service)).size(), cap);
    EXPECT_LE(events.matching(of_type_on_port(EventType::accept, service)).size(), cap);
  }  // every connection closes: its entries are deleted

  // With the entries freed, a new connection is tracked again (a leaked entry per socket would
  // leave the table full for good). Retried: other tests' sockets may take a freed entry first.
  bool tracked = false;
  for (int attempt = 0; attempt < 20 && !tracked; ++attempt) {
    Fd client = connect_to(AF_INET, service);
    Fd server = accept_one(listener.get());
    // By port, not cookie: the fallback may have reported a stand-in cookie at connect time.
    uint16_t local = local_port(client.get());
    auto ours = [&](const Event& e) { return e.type == EventType::connect && e.sport == local && e.dport == service; };
    tracked = !events.wait_for(ours, 1, 500ms).empty();
  }
  EXPECT_TRUE(tracked) << "no new connection was tracked after the table's sockets closed";
  EXPECT_EQ(events.decode_errors(), 0u);
}

// tp_btf keeps young sockets (from connect or accept) in the same kind of hash, because an entry
// there is far cheaper to make than sk_storage. Past its cap a new socket's state goes to its own
// sk_storage instead: every socket is still tracked, and the spill is counted.
TEST_F(Bounds, tp_btf_young_table_past_its_cap_spills_to_socket_storage_and_tracks_every_socket) {
  const uint16_t service = 63400;
  const uint32_t cap = 64;
  const int held = 100;  // 200 sockets (both ends) into 64 entries
  netwatch::kernel::ProbeOptions options;
  options.young_table_entries = cap;
  std::unique_ptr<netwatch::kernel::ProbeSet> probes;
  ASSERT_NO_FATAL_FAILURE(start_probes(options, netwatch::kernel::AttachVariant::tp_btf, probes));
  EventCollector events(*probes, 20);
  const netwatch::event::KernelCounters before = probes->counters();
  Fd listener = listen_on(AF_INET, service);
  {
    std::vector<std::pair<Fd, Fd>> pairs;
    for (int i = 0; i < held; ++i) {
      Fd client = connect_to(AF_INET, service);
      pairs.emplace_back(std::move(client), accept_one(listener.get()));
    }
    EXPECT_EQ(events.wait_for(of_type_on_port(EventType::connect, service), held).size(), size_t(held));
    EXPECT_EQ(events.wait_for(of_type_on_port(EventType::accept, service), held).size(), size_t(held));
    const netwatch::event::KernelCounters full = probes->counters();
    EXPECT_GE(full.state_spilled - before.state_spilled, uint64_t(2 * held - cap));
    EXPECT_EQ(full.state_full, before.state_full) << "a socket went untracked";
  }  // every connection closes: young ones leave the table, spilled ones their storage
  // Both ends of every connection report a close: state was found wherever it was put.
  EXPECT_EQ(events.wait_for(of_type_on_port(EventType::close, service), 2 * held).size(), size_t(2 * held));

  // With the entries freed, a new connection's state goes to the table again. Retried: other
  // sockets may take a freed entry first.
  bool young = false;
  for (int attempt = 0; attempt < 20 && !young; ++attempt) {
    const uint64_t spilled = probes->counters().state_spilled;
    Fd client = connect_to(AF_INET, service);
    Fd server = accept_one(listener.get());
    young = probes->counters().state_spilled == spilled;
  }
  EXPECT_TRUE(young) << "new sockets still spill after the table's sockets closed";
  EXPECT_EQ(events.decode_errors(), 0u);
}

}  // namespace
}  // namespace nwtest
