// Restarting the agent loses nothing: the probes stay attached in the pin directory, events
// wait in the pinned ring buffer, and the checkpoint carries the counters over, so every
// exported counter after a restart is at least what it was before and the connections made
// while no agent ran are counted. Also: kill -9, replaced pins, one agent per directory.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/bpf_objects.h"
#include "tests/support/harness.h"
#include "tests/support/kernel_tcp_info.h"

namespace nwtest {
namespace {

using Labels = std::map<std::string, std::string>;

class AgentRestart : public KernelTest {
 protected:
  std::vector<std::string> agent_args(const PinDirForTest& pins, std::vector<std::string> more = {}) const {
    std::vector<std::string> args = probe_args();
    args.insert(args.end(), {"--publish-interval", "50ms", "--pin-dir", pins.path()});
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  bool ringbuf() const { return GetParam().transport == netwatch::kernel::Transport::ringbuf; }
};

// Connects and closes `n` connections to `port`, accepting each.
void short_connections(int listen_fd, uint16_t port, int n) {
  for (int i = 0; i < n; ++i) {
    Fd client = connect_to(AF_INET, port);
    Fd server = accept_one(listen_fd);
  }
}

// Polls until `name{labels}` reaches `want`; returns the last value seen.
double wait_for_value(AgentProcess& agent, const std::string& name, const Labels& labels, double want) {
  double value = -1;
  wait_until([&] { return (value = find_sample(agent.metrics(), name, labels).value_or(-1)) >= want; }, 10s);
  return value;
}

bool is_counter_sample(const std::string& name) {
  auto ends = [&](std::string_view s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends("_total") || ends("_bucket") || ends("_count") || ends("_sum");
}

// Every counter series of `before` exists in `after` with a value at least as large.
void expect_no_counter_went_back(const std::vector<Sample>& before, const std::vector<Sample>& after) {
  size_t compared = 0;
  for (const Sample& b : before) {
    if (!is_counter_sample(b.name)) continue;
    std::optional<double> a = find_sample(after, b.name, b.labels);
    EXPECT_TRUE(a.has_value()) << b.name << testing::PrintToString(b.labels) << " is gone after the restart";
    if (a) {
      EXPECT_GE(*a, b.value) << b.name << testing::PrintToString(b.labels) << " went back";
    }
    ++compared;
  }
  EXPECT_GT(compared, 20u) << "too few counters to prove anything";
}

// Everything under a pin directory, as paths relative to it.
std::set<std::string> pinned_entries(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (!e.is_directory()) out.insert(std::filesystem::relative(e.path(), dir).string());
  return out;
}

// The programs an agent holds (fdinfo); other tests' netwatch programs may run meanwhile.
std::set<uint32_t> programs_of(AgentProcess& agent) {
  return programs_held_by(agent.process().pid());
}

// Which of `ids` bpftool still lists after a grace period: the kernel frees a program once its
// last reference goes, which may take a moment.
std::set<uint32_t> still_loaded(const std::set<uint32_t>& ids) {
  std::set<uint32_t> loaded;
  wait_until(
      [&] {
        loaded.clear();
        for (const BpfProgram& p : bpftool_programs())
          if (ids.count(p.id)) loaded.insert(p.id);
        return loaded.empty();
      },
      3s);
  return loaded;
}

TEST_P(AgentRestart, counters_continue_and_nothing_is_lost) {
  const uint16_t service = port(62301), http = port(62304);
  PinDirForTest pins;
  Fd listener = listen_on(AF_INET, service);
  Labels out = {{"direction", "outbound"}, {"peer", "127.0.0.1"}, {"port", std::to_string(service)}};
  Labels out_ok = out;
  out_ok["result"] = "ok";

  // A connection that lives through the restart, sending before, during and after.
  const std::vector<std::string> args = agent_args(pins, {"--rtt-interval", "50ms"});
  auto agent = std::make_unique<AgentProcess>(http, args);
  Fd live = connect_to(AF_INET, service);
  Fd live_peer = accept_one(listener.get());
  SocketThread sink(live_peer.release(), [](int fd) {
    char buf[65536];
    while (recv(fd, buf, sizeof(buf), 0) > 0) {
    }
  });
  std::string chunk(256 << 10, 'x');
  send_all(live.get(), chunk.data(), chunk.size());
  short_connections(listener.get(), service, 5);
  ASSERT_EQ(wait_for_value(*agent, "netwatch_tcp_connects_total", out_ok, 6), 6) << "5 short, 1 live";
  std::vector<Sample> before = agent->metrics();
  const std::set<uint32_t> programs = programs_of(*agent);
  ASSERT_EQ(programs.size(), 4u);
  nlohmann::json live_before, listed = agent->connections();  // a range-for over a temporary's member dangles
  for (const auto& c : listed["connections"])
    if (c["direction"] == "outbound" && c["local_port"] == local_port(live.get())) live_before = c;
  auto listed_before = std::chrono::steady_clock::now();

  std::optional<ExitStatus> stopped = agent->stop();
  ASSERT_TRUE(stopped && stopped->exited && stopped->code == 0) << agent->process().stderr_text();
  EXPECT_NE(agent->process().stderr_text().find("checkpoint stored"), std::string::npos)
      << agent->process().stderr_text();
  // What a clean stop leaves: exactly the intended pins.
  const std::string prefix = GetParam().variant == netwatch::kernel::AttachVariant::tp_btf ? "btf_" : "tp_";
  std::set<std::string> want = {"checkpoint",         "meta",           "maps/counters",
                                "maps/event_scratch", "maps/events",    "maps/events_perf",
                                "maps/last_wakeup",   "maps/sock_storage", "maps/sock_table",
                                "maps/listeners",     "maps/accept_handoff"};
  for (const char* p : {"probe", "retransmit", "retransmit_synack", "set_state"}) want.insert("links/" + prefix + p);
  EXPECT_EQ(pinned_entries(pins.path()), want);

  // No agent runs: the pinned probes keep counting and the ring buffer keeps the events.
  short_connections(listener.get(), service, 3);
  send_all(live.get(), chunk.data(), chunk.size());

  agent = std::make_unique<AgentProcess>(http, args);
  const std::string& log = agent->process().stderr_text();
  short_connections(listener.get(), service, 2);
  send_all(live.get(), chunk.data(), chunk.size());
  EXPECT_EQ(programs_of(*agent), programs) << "the restarted agent loaded programs of its own";

  std::vector<Sample> after;
  if (ringbuf()) {
    EXPECT_EQ(wait_for_value(*agent, "netwatch_tcp_connects_total", out_ok, 11), 11)
        << "connections made while no agent ran are missing";
    after = agent->metrics();
    for (const Sample& s : after)
      if (s.name == "netwatch_events_lost_total") {
        EXPECT_EQ(s.value, 0) << testing::PrintToString(s.labels);
      }
  } else {
    // Perf buffers belong to the reading process: while none runs, the kernel can deliver
    // nothing and counts each event lost (other processes' connects too: hence "at least").
    EXPECT_EQ(wait_for_value(*agent, "netwatch_tcp_connects_total", out_ok, 8), 8) << "6 before, 2 after";
    after = agent->metrics();
    EXPECT_GE(find_sample(after, "netwatch_events_lost_total", {{"type", "connect"}}).value_or(0), 3)
        << "the 3 connects made while no agent ran are not counted lost";
  }
  expect_no_counter_went_back(before, after);

  // The live connection is the same tracked connection (same age), and its bytes sent add up
  // across both agents: 3 chunks (before, while down, after) and no more than the kernel says.
  ASSERT_FALSE(live_before.is_null()) << "the live connection was not listed before the restart";
  nlohmann::json live_after;
  for (auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
    send_all(live.get(), "x", 1);  // its ACKs bring RTT samples, which carry the byte counts
    listed = agent->connections();
    for (const auto& c : listed["connections"])
      if (c["direction"] == "outbound" && c["local_port"] == local_port(live.get())) live_after = c;
    if (!live_after.is_null() && live_after["bytes_sent"].get<uint64_t>() >= 3 * chunk.size()) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(live_after.is_null()) << "the live connection is no longer tracked";
  KernelTcpInfo info = read_kernel_tcp_info(live.get());
  double listed_apart = std::chrono::duration<double>(std::chrono::steady_clock::now() - listed_before).count();
  EXPECT_EQ(live_after["cookie"], live_before["cookie"]);  // a stand-in in the tracepoint variant
  EXPECT_GE(live_after["age_s"].get<double>(), live_before["age_s"].get<double>() + listed_apart - 0.5);
  EXPECT_GE(live_after["bytes_sent"].get<uint64_t>(), 3 * chunk.size());
  EXPECT_LE(live_after["bytes_sent"].get<uint64_t>(), info.bytes_sent);
  EXPECT_NE(log.find("probes adopted"), std::string::npos) << log;
  EXPECT_NE(log.find("continuing from the previous agent's checkpoint"), std::string::npos) << log;
}

TEST_P(AgentRestart, kill_9_then_the_next_agent_recovers) {
  const uint16_t service = port(62302), http = port(62304, 1);
  PinDirForTest pins;
  Fd listener = listen_on(AF_INET, service);
  auto agent = std::make_unique<AgentProcess>(http, agent_args(pins));
  const std::set<uint32_t> programs = programs_of(*agent);
  ASSERT_EQ(programs.size(), 4u);
  agent->process().signal(SIGKILL);
  ASSERT_TRUE(agent->process().wait(5s));
  short_connections(listener.get(), service, 3);  // while no agent runs

  agent = std::make_unique<AgentProcess>(http, agent_args(pins));
  const std::string& log = agent->process().stderr_text();
  EXPECT_NE(log.find("probes adopted"), std::string::npos) << log;
  EXPECT_NE(log.find("did not stop cleanly"), std::string::npos) << log;
  EXPECT_EQ(programs_of(*agent), programs) << "a second set of programs was attached";
  if (ringbuf()) {
    Labels out_ok = {
        {"direction", "outbound"}, {"peer", "127.0.0.1"}, {"port", std::to_string(service)}, {"result", "ok"}};
    EXPECT_EQ(wait_for_value(*agent, "netwatch_tcp_connects_total", out_ok, 3), 3)
        << "the events that waited in the pinned ring were not delivered";
  }

  // `netwatch cleanup` refuses while an agent runs, then removes every program.
  std::string err;
  EXPECT_EQ(pins.cleanup(&err), 2) << err;
  EXPECT_NE(err.find("another netwatch agent is using"), std::string::npos) << err;
  ASSERT_TRUE(agent->stop());
  EXPECT_EQ(pins.cleanup(&err), 0) << err;
  std::set<uint32_t> left = still_loaded(programs);
  EXPECT_TRUE(left.empty()) << "still loaded after cleanup: " << testing::PrintToString(left);
  EXPECT_NE(access(pins.path().c_str(), F_OK), 0) << pins.path() << " still exists";
}

TEST_P(AgentRestart, pins_of_another_configuration_are_replaced_and_counters_continue) {
  const uint16_t service = port(62303), http = port(62304, 2);
  PinDirForTest pins;
  Fd listener = listen_on(AF_INET, service);
  Labels out_ok = {
      {"direction", "outbound"}, {"peer", "127.0.0.1"}, {"port", std::to_string(service)}, {"result", "ok"}};
  auto agent = std::make_unique<AgentProcess>(http, agent_args(pins, {"--rtt-interval", "1s"}));
  short_connections(listener.get(), service, 4);
  ASSERT_EQ(wait_for_value(*agent, "netwatch_tcp_connects_total", out_ok, 4), 4);
  std::vector<Sample> before = agent->metrics();
  const std::set<uint32_t> old_programs = programs_of(*agent);
  ASSERT_EQ(old_programs.size(), 4u);
  ASSERT_TRUE(agent->stop());

  // An upgrade, as far as the pins can tell: another configuration hashes differently.
  agent = std::make_unique<AgentProcess>(http, agent_args(pins, {"--rtt-interval", "2s"}));
  const std::string& log = agent->process().stderr_text();
  EXPECT_NE(log.find("replacing the probes pinned in " + pins.path()), std::string::npos) << log;
  short_connections(listener.get(), service, 1);
  EXPECT_EQ(wait_for_value(*agent, "netwatch_tcp_connects_total", out_ok, 5), 5);
  expect_no_counter_went_back(before, agent->metrics());
  std::set<uint32_t> left = still_loaded(old_programs);
  EXPECT_TRUE(left.empty()) << "replaced programs still loaded: " << testing::PrintToString(left);
  EXPECT_EQ(programs_of(*agent).size(), 4u);
}

TEST_P(AgentRestart, a_second_agent_on_the_same_pins_is_refused) {
  PinDirForTest pins;
  AgentProcess first(port(62304, 3), agent_args(pins));
  ChildProcess second(
      {NETWATCH_BINARY, "agent", "--listen", "127.0.0.1:" + std::to_string(port(62304, 4)), "--pin-dir", pins.path()});
  std::optional<ExitStatus> status = second.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 2);
  EXPECT_NE(second.stderr_text().find("another netwatch agent is using " + pins.path()), std::string::npos)
      << second.stderr_text();
  EXPECT_EQ(http_get("127.0.0.1", first.port(), "/healthz", nullptr), 200);
}

NW_ALL_COMBOS(AgentRestart);

}  // namespace
}  // namespace nwtest
