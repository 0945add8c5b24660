// netwatch_churn: short loopback connections per second with the agent / without (issue 6,
// target 3: median ratio >= 0.95), then a fixed 20k connections/s with the agent, reporting its
// lost-event counter (target: 0). --load-only runs just the load generator (bench/churn.h).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "util/log.h"
#include "bench/agent_readings.h"
#include "bench/bench_main.h"
#include "bench/churn.h"
#include "bench/paired_runs.h"

namespace netwatch::bench {
namespace {

struct Options {
  int pairs = 10;
  double seconds = 5;  // each max-rate run
  unsigned threads = 2;
  unsigned acceptors = 1;
  double fixed_rate = 20000;
  double fixed_seconds = 10;
  bool load_only = false;
  AgentCommand agent{default_netwatch_binary(), 19472, {}};
};

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

struct AgentCounters {
  double events = 0, kernel = 0, lost = 0, tracked = 0, evicted = 0, untracked = 0;
};

AgentCounters read_counters(const nwtest::AgentProcess& agent) {
  std::string m = agent.metrics_text();
  return {metric_sum(m, "netwatch_events_total"),
          metric_sum(m, "netwatch_kernel_events_total"),
          metric_sum(m, "netwatch_events_lost_total"),
          metric_sum(m, "netwatch_tracked_connections"),
          metric_sum(m, "netwatch_connection_evictions_total"),
          metric_sum(m, "netwatch_untracked_sockets_total")};
}

void fixed_rate_run(const Options& opt, ChurnLoad& load) {
  auto agent = start_agent(opt.agent, g_stop);
  sleep_unless_stopped(std::chrono::milliseconds(1500));  // a published snapshot to start from
  AgentCounters before = read_counters(*agent);
  ProcessUsage cpu_before = process_usage(agent->pid());
  ChurnResult r = load.run({opt.threads, opt.acceptors, opt.fixed_rate, ms(opt.fixed_seconds)}, g_stop);
  ProcessUsage cpu_after = process_usage(agent->pid());
  // One publish interval plus a drain: every event of the window is counted in the next snapshot.
  sleep_unless_stopped(std::chrono::milliseconds(2000));
  AgentCounters after = read_counters(*agent);
  double lost = after.lost - before.lost;
  std::printf("\nfixed rate with the agent (target: 0 events lost at %.0f connections/s)\n", opt.fixed_rate);
  std::printf("%-34s %14s\n", "measure", "value");
  std::printf("%-34s %14.0f\n", "connections/s asked", opt.fixed_rate);
  std::printf("%-34s %14.0f\n", "connections/s achieved", r.per_second());
  std::printf("%-34s %14llu\n", "connections", static_cast<unsigned long long>(r.connections));
  std::printf("%-34s %14llu\n", "connect errors", static_cast<unsigned long long>(r.failures));
  std::printf("%-34s %14.1f\n", "seconds", r.seconds);
  std::printf("%-34s %14.0f\n", "kernel events (produced)", after.kernel - before.kernel);
  std::printf("%-34s %14.0f\n", "events read", after.events - before.events);
  std::printf("%-34s %14.0f\n", "netwatch_events_lost_total delta", lost);
  std::printf("%-34s %14.0f\n", "untracked sockets delta", after.untracked - before.untracked);
  std::printf("%-34s %14.1f\n", "agent CPU % of one core",
              100 * (cpu_after.cpu_seconds - cpu_before.cpu_seconds) / r.seconds);
  std::printf("events lost: %.0f  target 0: %s%s\n", lost, lost == 0 ? "met" : "MISSED",
              r.per_second() < 0.95 * opt.fixed_rate ? " (the load fell short of the asked rate)" : "");
}

int run(const Options& opt) {
  ChurnLoad load(opt.acceptors);
  if (opt.load_only) {
    ChurnResult r = load.run({opt.threads, opt.acceptors, opt.fixed_rate, ms(opt.fixed_seconds)}, g_stop);
    std::printf("%llu connections in %.2f s: %.0f connections/s, %llu connect errors\n",
                static_cast<unsigned long long>(r.connections), r.seconds, r.per_second(),
                static_cast<unsigned long long>(r.failures));
    return 0;
  }
  std::printf("netwatch_churn: %s\n", machine_line().c_str());
  std::printf("127.0.0.1:%u, %u client threads, %u acceptor, %.1f s per run, %d pairs\n\n", load.port(), opt.threads,
              opt.acceptors, opt.seconds, opt.pairs);
  std::fflush(stdout);
  auto samples = run_pairs(opt.pairs, [&](bool with_agent) {
    std::unique_ptr<nwtest::AgentProcess> agent;
    if (with_agent) agent = start_agent(opt.agent, g_stop);
    return load.run({opt.threads, opt.acceptors, 0, ms(opt.seconds)}, g_stop).per_second();
  });
  std::fputs(
      render_pairs("short connections per second (max rate), with the agent / without", samples, 1, "conn/s", 0.95)
          .c_str(),
      stdout);
  std::fflush(stdout);
  if (opt.fixed_rate > 0) fixed_rate_run(opt, load);
  std::printf("load average after: %s\n", load_average().c_str());
  return 0;
}

}  // namespace
}  // namespace netwatch::bench

int main(int argc, char** argv) {
  using namespace netwatch::bench;
  Options opt;
  bool smoke = false;
  CLI::App app{
      "netwatch_churn: short loopback connections/s with the agent / without, and lost events at a "
      "fixed rate (needs root)"};
  app.add_option("--pairs", opt.pairs, "with/without pairs of max-rate runs")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--seconds", opt.seconds, "length of each max-rate run")->capture_default_str();
  app.add_option("--threads", opt.threads, "client threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--acceptors", opt.acceptors, "listener threads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--rate", opt.fixed_rate, "connections/s of the fixed-rate run; 0 skips it")->capture_default_str();
  app.add_option("--rate-seconds", opt.fixed_seconds, "length of the fixed-rate run")->capture_default_str();
  app.add_flag("--load-only", opt.load_only, "only generate --rate connections/s for --rate-seconds (0: max rate)");
  add_agent_options(app, opt.agent);
  app.add_flag("--smoke", smoke, "a short run that checks the benchmark works: 1 pair of 1 s, 2 s at the fixed rate");
  CLI11_PARSE(app, argc, argv);
  if (smoke) opt.pairs = 1, opt.seconds = 1, opt.fixed_seconds = 2;
  netwatch::util::set_log_level(netwatch::util::LogLevel::warn);
  install_stop_signals();
  return guarded_main("netwatch_churn", [&] { return run(opt); });
}
