// netwatch_throughput: loopback iperf3 throughput with the agent running / without (issue 6,
// target 2: median ratio >= 0.97). Interleaved pairs; the agent is started fresh for each
// "with" run and stopped after it, so "without" has no netwatch program attached at all.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "util/log.h"
#include "bench/agent_readings.h"
#include "bench/bench_main.h"
#include "bench/loopback_load.h"
#include "bench/paired_runs.h"

namespace netwatch::bench {
namespace {

struct Options {
  int pairs = 10;
  int seconds = 5;
  uint16_t port = 15221;
  AgentCommand agent{default_netwatch_binary(), 19471, {}};
};

int run(const Options& opt) {
  std::printf("netwatch_throughput: %s\n", machine_line().c_str());
  std::printf("iperf3 127.0.0.1:%u, %d s per run, %d pairs; agent: %s %s\n\n", opt.port, opt.seconds, opt.pairs,
              opt.agent.binary.c_str(), opt.agent.flags.empty() ? "(default flags)" : "(extra flags)");
  std::fflush(stdout);
  uint64_t agent_events = 0, agent_lost = 0;
  auto samples = run_pairs(opt.pairs, [&](bool with_agent) {
    std::unique_ptr<nwtest::AgentProcess> agent;
    if (with_agent) agent = start_agent(opt.agent, g_stop);
    IperfPair iperf({opt.port, std::chrono::seconds(opt.seconds), std::nullopt, std::nullopt}, g_stop);
    iperf.start_client();
    iperf.wait(g_stop);
    if (agent) {
      std::string m = agent->metrics_text();
      agent_events += static_cast<uint64_t>(metric_sum(m, "netwatch_events_total"));
      agent_lost += static_cast<uint64_t>(metric_sum(m, "netwatch_events_lost_total"));
    }
    return iperf.received_bits_per_second();
  });
  std::fputs(render_pairs("loopback iperf3 throughput, with the agent / without", samples, 1e9, "Gbit/s", 0.97).c_str(),
             stdout);
  std::printf("agent: %llu events read, %llu lost over the \"with\" runs; load average after: %s\n",
              static_cast<unsigned long long>(agent_events), static_cast<unsigned long long>(agent_lost),
              load_average().c_str());
  return 0;
}

}  // namespace
}  // namespace netwatch::bench

int main(int argc, char** argv) {
  using namespace netwatch::bench;
  Options opt;
  bool smoke = false;
  CLI::App app{"netwatch_throughput: loopback iperf3 throughput with the agent / without, interleaved (needs root)"};
  app.add_option("--pairs", opt.pairs, "with/without pairs")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--seconds", opt.seconds, "length of each iperf3 run")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--port", opt.port, "iperf3 port on 127.0.0.1")->check(CLI::Range(1024, 65535))->capture_default_str();
  add_agent_options(app, opt.agent);
  app.add_flag("--smoke", smoke, "a short run that checks the benchmark works: 1 pair of 1 s");
  CLI11_PARSE(app, argc, argv);
  if (smoke) opt.pairs = 1, opt.seconds = 1;
  netwatch::util::set_log_level(netwatch::util::LogLevel::warn);
  install_stop_signals();
  return guarded_main("netwatch_throughput", [&] { return run(opt); });
}
