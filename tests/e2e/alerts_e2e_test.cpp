// The chart's alert rules in a real Prometheus scraping the real agent. The rules file is
// rendered from helm/netwatch by deploy/prometheus/render-rules.sh with a helm from
// scripts/install-helm.sh, with short durations set through the chart's values. Two flows with
// the same traffic run side by side: nftables drops 10 % of the segments arriving on one
// port's input hook, and NetwatchTCPRetransmitRatioHigh must fire for exactly that
// workload -> peer:port; the other port loses nothing, and its alert must never exist, neither
// pending nor firing, while its traffic is above the rule's floor the whole time.
#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/child_process.h"
#include "tests/support/harness.h"
#include "tests/support/kernel_tcp_info.h"
#include "tests/support/prometheus_server.h"

namespace nwtest {
namespace {

constexpr uint16_t kLossyPort = 62601;
constexpr uint16_t kCleanPort = 62602;
constexpr uint16_t kAgentPort = 62690;
constexpr uint16_t kPrometheusPort = 62691;
constexpr const char* kAlert = "NetwatchTCPRetransmitRatioHigh";

// The values the rules are rendered with. Durations are short so the test ends in seconds; the
// threshold and the floor are the chart's defaults, set here too so the test knows them.
constexpr const char* kRateWindow = "30s";
constexpr int kForSeconds = 5;
constexpr double kThreshold = 0.05;
constexpr double kMinSegmentsPerSecond = 10;

// Each flow writes kMessage bytes every kPace with TCP_NODELAY: one segment per write, ~100
// segments/s, ten times the floor. 10 % of the lossy flow's segments are dropped on arrival,
// so it retransmits ~9 % of what it sends, above the 5 % threshold.
constexpr size_t kMessage = 1000;
constexpr auto kPace = std::chrono::milliseconds(10);
constexpr auto kFireDeadline = std::chrono::seconds(40);

using Clock = std::chrono::steady_clock;

// A directory of the test's own under /tmp, removed with everything in it.
struct TempDir {
  explicit TempDir(const std::string& prefix)
      : path(std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

// Runs a tool to its end; returns its stdout. Throws when it fails or outlives `timeout`.
std::string run_tool(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  std::string cmd;
  for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  ChildProcess child(argv);
  auto status = child.wait(timeout);
  std::string out;
  for (const std::string& line : child.lines()) out += line + "\n";
  if (!status) throw std::runtime_error(cmd + ": still running after " + std::to_string(timeout.count()) + " s");
  if (!status->exited || status->code != 0)
    throw std::runtime_error(cmd + ": exit code " + std::to_string(status->code) + ": " + child.stderr_text());
  return out;
}

// A client on loopback streaming to a server on `port` at a steady pace, and the server's sink.
// Nothing moves until start(). The threads are declared after the sockets, so they are
// stopped (their sockets shut down) and joined before the sockets close.
struct PacedFlow {
  explicit PacedFlow(uint16_t port)
      : listener(listen_on(AF_INET, port)), client(connect_to(AF_INET, port)), server(accept_one(listener.get())) {
    int one = 1;
    if (setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
      throw std::runtime_error("setsockopt TCP_NODELAY failed");
  }
  void start() {
    sink = std::make_unique<SocketThread>(server.get(), [](int fd) {
      char buf[65536];
      while (recv(fd, buf, sizeof(buf), 0) > 0) {
      }
    });
    sender = std::make_unique<SocketThread>(client.get(), [](int fd) {
      const std::string message(kMessage, 'x');
      for (auto next = Clock::now();; std::this_thread::sleep_until(next)) {
        send_all(fd, message.data(), message.size());  // throws once the socket is shut down
        next = std::max(next + kPace, Clock::now());  // after a stall, keep the pace, no burst
      }
    });
  }

  Fd listener, client, server;
  std::unique_ptr<SocketThread> sink, sender;
};

std::string describe(const std::vector<PrometheusAlert>& alerts) {
  std::ostringstream os;
  for (const PrometheusAlert& a : alerts) os << "\n  " << a;
  return os.str();
}

TEST(AlertsE2E, retransmit_ratio_alert_fires_for_the_lossy_port_only) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
  const auto test_start = Clock::now();
  const std::string source = NETWATCH_SOURCE_DIR;
  const std::string lossy = std::to_string(kLossyPort), clean = std::to_string(kCleanPort);
  const std::string peer = loopback_text(AF_INET);

  // ---- the rules, rendered from the chart with short durations ----
  TempDir dir("nw-alerts");
  std::string helm = run_tool({"/bin/bash", source + "/scripts/install-helm.sh"}, std::chrono::seconds(300));
  while (!helm.empty() && helm.back() == '\n') helm.pop_back();
  helm = helm.substr(helm.rfind('\n') + 1);  // the script prints the binary's path last
  ASSERT_TRUE(std::filesystem::exists(helm)) << "install-helm.sh printed '" << helm << "'";
  const std::string rules = (dir.path / "netwatch-rules.yaml").string();
  std::ostringstream threshold, min_rate;
  threshold << kThreshold;
  min_rate << kMinSegmentsPerSecond;
  run_tool({"/usr/bin/env", "HELM=" + helm, "/bin/bash", source + "/deploy/prometheus/render-rules.sh", "-o", rules,
            "--set", std::string("alerts.rateWindow=") + kRateWindow,                               //
            "--set", "alerts.retransmitRatio.for=" + std::to_string(kForSeconds) + "s",             //
            // --set would pass 0.05 as a string, which the chart's schema refuses
            "--set-json", "alerts.retransmitRatio.threshold=" + threshold.str(),                    //
            "--set-json", "alerts.retransmitRatio.minSegmentsPerSecond=" + min_rate.str()},
           std::chrono::seconds(60));

  // ---- the real agent and a real Prometheus evaluating those rules ----
  AgentProcess agent(kAgentPort, {"--publish-interval", "200ms", "--drain-interval", "20ms"});
  PrometheusServer prometheus(kPrometheusPort, kAgentPort, rules);
  nlohmann::json rule = prometheus.rule(kAlert);  // the rule manager may start after /-/ready
  for (auto deadline = Clock::now() + std::chrono::seconds(10); rule.is_null() && Clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rule = prometheus.rule(kAlert);
  }
  ASSERT_FALSE(rule.is_null()) << "Prometheus did not load " << kAlert << " from " << rules;
  EXPECT_EQ(rule.value("duration", 0.0), kForSeconds) << rule.dump();
  EXPECT_NE(rule.value("query", "").find(std::string("[") + kRateWindow + "]"), std::string::npos) << rule.dump();

  // ---- two flows with the same traffic; loss on one port ----
  PacedFlow lossy_flow(kLossyPort);
  PacedFlow clean_flow(kCleanPort);
  NftTable nft;  // after the handshakes: only data segments are lost
  const uint64_t drop = nft.add_rule("tcp dport " + lossy + " numgen random mod 10 == 0 counter drop");
  // Prometheus starts scraping a few seconds after it is ready (its scrape manager applies
  // targets on a 5 s tick). Traffic starts once it has scraped both flows while still idle,
  // so rate() sees each flow from its start and the timings below are the alert's own.
  const auto segments = [&](const std::string& port) {
    return "netwatch_tcp_segments_sent_total{job=\"" + std::string(PrometheusServer::kJob) +
           "\",direction=\"outbound\",port=\"" + port + "\"}";
  };
  for (auto deadline = Clock::now() + std::chrono::seconds(20);
       !(prometheus.query(segments(lossy)) && prometheus.query(segments(clean)));) {
    ASSERT_LT(Clock::now(), deadline) << "Prometheus has not scraped the flows' series: " << segments(lossy);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  lossy_flow.start();
  clean_flow.start();
  const auto traffic_start = Clock::now();

  // Every alert Prometheus holds, every 250 ms, until the lossy flow's alert fires. Prometheus
  // evaluates once a second and the API shows each evaluation's result until the next one, so
  // these looks see every state; the ALERTS check below covers every evaluation anyway.
  std::optional<PrometheusAlert> fired;
  std::optional<Clock::duration> pending_after, fired_after;
  std::vector<PrometheusAlert> wrong;  // alerts that must never exist
  std::set<std::string> others;        // the other rules' alerts, for the log
  while (!fired && Clock::now() < traffic_start + kFireDeadline) {
    for (PrometheusAlert& a : prometheus.alerts()) {
      if (a.label("alertname") != kAlert) {
        others.insert(a.label("alertname") + " (" + a.state + ")");
      } else if (a.label("port") == clean || (a.label("port") == lossy && a.label("direction") != "outbound")) {
        // the clean flow, or the lossy flow's receiving end (it only sends ACKs); once per state
        bool seen = false;
        for (const PrometheusAlert& w : wrong) seen |= w.labels == a.labels && w.state == a.state;
        if (!seen) wrong.push_back(a);
      } else if (a.label("port") == lossy) {
        if (!pending_after) pending_after = Clock::now() - traffic_start;
        if (a.state == "firing") {
          fired_after = Clock::now() - traffic_start;
          fired = a;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const uint64_t dropped = nft.packets(drop);
  const KernelTcpInfo lossy_info = read_kernel_tcp_info(lossy_flow.client.get());
  const KernelTcpInfo clean_info = read_kernel_tcp_info(clean_flow.client.get());
  const std::string ground_truth =
      "\nlossy client: " + std::to_string(lossy_info.total_retrans) + " retransmitted of " +
      std::to_string(lossy_info.segs_out) + " segments, nft dropped " + std::to_string(dropped) +
      "; clean client: " + std::to_string(clean_info.total_retrans) + " of " + std::to_string(clean_info.segs_out) +
      "\nother alerts seen: " + [&] {
        std::string s;
        for (const std::string& o : others) s += o + " ";
        return s.empty() ? std::string("none") : s;
      }();
  std::cout << "[          ] " << kAlert << " pending after "
            << (pending_after ? std::to_string(seconds(*pending_after)) + " s" : std::string("never")) << ", firing after "
            << (fired_after ? std::to_string(seconds(*fired_after)) + " s" : std::string("never")) << ground_truth
            << "\n";

  // The loss was real: the kernel dropped and retransmitted.
  ASSERT_GT(dropped, 0u) << "the nft rule dropped nothing: the test proves nothing";
  ASSERT_GT(lossy_info.total_retrans, 0u) << "no retransmission: the test proves nothing";

  // The lossy flow's alert fired, naming the workload (host processes) and peer:port.
  ASSERT_TRUE(fired) << kAlert << " did not fire for port " << lossy << " within "
                     << std::chrono::duration_cast<std::chrono::seconds>(kFireDeadline).count() << " s of traffic"
                     << ground_truth << "\nalerts now:" << describe(prometheus.alerts());
  EXPECT_EQ(fired->label("direction"), "outbound") << *fired;
  EXPECT_EQ(fired->label("peer"), peer) << *fired;
  EXPECT_EQ(fired->label("port"), lossy) << *fired;
  EXPECT_EQ(fired->label("severity"), "warning") << *fired;
  EXPECT_EQ(fired->label("namespace"), "") << "a host process has no pod labels: " << *fired;
  EXPECT_EQ(fired->label("pod"), "") << "a host process has no pod labels: " << *fired;
  EXPECT_GT(fired->value, kThreshold) << *fired;
  EXPECT_EQ(fired->annotations["summary"], "TCP retransmit ratio high from host processes to " + peer + ":" + lossy);

  // The clean flow's alert never existed, while its traffic was above the floor: the rule did
  // consider it, and found its ratio low.
  EXPECT_TRUE(wrong.empty()) << kAlert << " for a flow without loss:" << describe(wrong) << ground_truth;
  const std::string clean_rate = "sum by (direction, peer, port) (rate(" + segments(clean) + "[" + kRateWindow + "]))";
  std::optional<double> rate = prometheus.query(clean_rate);
  ASSERT_TRUE(rate) << "Prometheus has no segments for the clean flow: " << clean_rate;
  EXPECT_GT(*rate, kMinSegmentsPerSecond) << "the clean flow's traffic is below the rule's floor, so its silence "
                                             "proves nothing";

  // Prometheus's own record of every evaluation since it started (the ALERTS series holds a
  // sample per evaluation of each pending or firing alert): none for the clean port, and the
  // same query finds the lossy port's firing alert.
  const long span = std::lround(seconds(Clock::now() - test_start)) + 5;
  const auto alerts_series = [&](const std::string& matchers) {
    return prometheus.query_vector("count_over_time(ALERTS{alertname=\"" + std::string(kAlert) + "\"," + matchers +
                                   "}[" + std::to_string(span) + "s])");
  };
  nlohmann::json clean_series = alerts_series("port=\"" + clean + "\"");
  EXPECT_TRUE(clean_series.empty()) << clean_series.dump();
  nlohmann::json lossy_inbound = alerts_series("port=\"" + lossy + "\",direction!=\"outbound\"");
  EXPECT_TRUE(lossy_inbound.empty()) << lossy_inbound.dump();
  EXPECT_FALSE(alerts_series("port=\"" + lossy + "\",alertstate=\"firing\"").empty())
      << "the ALERTS query finds nothing even for the firing alert: the check above proves nothing";

  std::cout << "[          ] whole test " << seconds(Clock::now() - test_start) << " s\n";
}

}  // namespace
}  // namespace nwtest
