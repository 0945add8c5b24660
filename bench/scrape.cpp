// netwatch_scrape: /metrics latency of the real agent holding ~50k series, under a wrk load
// (issue 6, target 6: p99 <= 100 ms). The series come from real traffic: one short connection to
// each of ~680 peers, each a listener of our own on its own loopback address 127.1.x.y (all of
// 127/8 is local) and its own port, so each peer is an outbound flow and service (48 series) and
// an inbound one (27). The agent runs with the budget raised and the churn breaker off, so every
// peer keeps its series.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>

#include "bench/agent_readings.h"
#include "bench/bench_main.h"
#include "bench/paired_runs.h"
#include "util/log.h"

namespace netwatch::bench {
namespace {

struct Options {
  size_t peers = 680;
  uint16_t peer_port = 15231;
  int seconds = 10;
  int threads = 2;
  int connections = 4;
  AgentCommand agent{default_netwatch_binary(), 19474, {"--max-series", "200000", "--max-new-flows-per-minute", "0"}};
};

std::string sys_error(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

uint32_t peer_address(size_t i) {
  return 0x7f010000u | static_cast<uint32_t>(i / 250) << 8 | (i % 250 + 1);
}

// One connect/accept/close to each peer: a flow per peer in the agent.
void visit_peers(const Options& opt) {
  for (size_t i = 0; i < opt.peers; ++i) {
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_addr.s_addr = htonl(peer_address(i));
    peer.sin_port = htons(static_cast<uint16_t>(opt.peer_port + i));
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&peer), sizeof(peer)) != 0 ||
        listen(listener, 8) != 0)
      throw util::FatalError(sys_error("listening on 127.1.x.y:" + std::to_string(opt.peer_port + i)));
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (client < 0 || bind(client, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
        connect(client, reinterpret_cast<sockaddr*>(&peer), sizeof(peer)) != 0)
      throw util::FatalError(sys_error("connect to 127.1.x.y"));
    int accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (accepted < 0) throw util::FatalError(sys_error("accept"));
    ssize_t sent = write(client, "x", 1);  // a data segment and its ACK: an RTT sample
    char byte;
    if (sent != 1 || read(accepted, &byte, 1) != 1) throw util::FatalError(sys_error("one byte over the connection"));
    close(client);
    close(accepted);
    close(listener);
  }
}

// "    99%   12.34ms" -> milliseconds, from wrk --latency.
double wrk_percentile_ms(const std::string& out, const std::string& percent) {
  std::smatch m;
  std::regex line("\\s" + percent + "%\\s+([0-9.]+)(us|ms|s)\\b");
  if (!std::regex_search(out, m, line)) throw util::FatalError("no " + percent + "% latency in wrk's output: " + out);
  double v = std::stod(m[1]);
  return m[2] == "us" ? v / 1000 : m[2] == "s" ? v * 1000 : v;
}

double wrk_number(const std::string& out, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(pattern))) return 0;
  return std::stod(m[1]);
}

int run(const Options& opt) {
  std::printf("netwatch_scrape: %s\n", machine_line().c_str());
  auto agent = start_agent(opt.agent, g_stop);
  visit_peers(opt);
  sleep_unless_stopped(std::chrono::milliseconds(2500));  // published, with every flow
  std::string text = agent->metrics_text();
  size_t series = series_count(text);
  double flows = metric_sum(text, "netwatch_flows");
  double stage = metric_sum(text, "netwatch_series_budget_stage");
  std::printf("%zu peers visited: %.0f flows, %zu series, %zu bytes per scrape, budget stage %.0f\n", opt.peers, flows,
              series, text.size(), stage);
  std::printf("wrk: %d threads, %d connections, %d s against http://127.0.0.1:%u/metrics\n\n", opt.threads,
              opt.connections, opt.seconds, opt.agent.port);
  std::fflush(stdout);

  ProcessUsage before = process_usage(agent->pid());
  std::string out = nwtest::run_command({"wrk", "--threads", std::to_string(opt.threads), "--connections",
                                         std::to_string(opt.connections), "--duration",
                                         std::to_string(opt.seconds) + "s", "--timeout", "10s", "--latency",
                                         "http://127.0.0.1:" + std::to_string(opt.agent.port) + "/metrics"});
  ProcessUsage after = process_usage(agent->pid());
  double requests = wrk_number(out, "([0-9]+) requests in");
  double p50 = wrk_percentile_ms(out, "50"), p90 = wrk_percentile_ms(out, "90"), p99 = wrk_percentile_ms(out, "99");
  double errors =
      wrk_number(out, "Non-2xx or 3xx responses: ([0-9]+)") + wrk_number(out, "Socket errors: connect ([0-9]+)");
  double cpu_ms_per_scrape = requests > 0 ? (after.cpu_seconds - before.cpu_seconds) * 1000 / requests : 0;

  std::printf("%-34s %12s %10s\n", "measure", "value", "target");
  std::printf("%-34s %12.0f\n", "series", static_cast<double>(series));
  std::printf("%-34s %12.0f\n", "scrapes", requests);
  std::printf("%-34s %12.1f\n", "scrapes/s", requests / opt.seconds);
  std::printf("%-34s %12.2f\n", "latency p50, ms", p50);
  std::printf("%-34s %12.2f\n", "latency p90, ms", p90);
  std::printf("%-34s %12.2f %10s  %s\n", "latency p99, ms", p99, "<= 100", p99 <= 100 ? "met" : "MISSED");
  std::printf("%-34s %12.2f\n", "agent CPU ms per scrape", cpu_ms_per_scrape);
  std::printf("%-34s %12.0f\n", "agent CPU ns per series", series ? cpu_ms_per_scrape * 1e6 / series : 0);
  std::printf("%-34s %12.0f\n", "errors (non-2xx, connect)", errors);
  std::printf("load average after: %s\n", load_average().c_str());
  return 0;
}

}  // namespace
}  // namespace netwatch::bench

int main(int argc, char** argv) {
  using namespace netwatch::bench;
  Options opt;
  bool smoke = false;
  CLI::App app{"netwatch_scrape: /metrics latency of the real agent at ~50k series under wrk (needs root)"};
  app.add_option("--peers", opt.peers, "loopback peers 127.1.x.y, each on a port of its own")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option("--peer-port", opt.peer_port, "the first peer's listening port (the next ones follow)")
      ->capture_default_str();
  app.add_option("--seconds", opt.seconds, "wrk duration")->check(CLI::Range(1, 3600))->capture_default_str();
  app.add_option("--threads", opt.threads, "wrk threads")->capture_default_str();
  app.add_option("--connections", opt.connections, "wrk connections")->capture_default_str();
  add_agent_options(app, opt.agent);
  app.add_flag("--smoke", smoke, "a short run that checks the benchmark works: 50 peers, 2 s of wrk");
  CLI11_PARSE(app, argc, argv);
  if (smoke) opt.peers = 50, opt.seconds = 2;
  netwatch::util::set_log_level(netwatch::util::LogLevel::warn);
  install_stop_signals();
  return guarded_main("netwatch_scrape", [&] { return run(opt); });
}
