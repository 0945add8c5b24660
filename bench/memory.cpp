// netwatch_memory: the agent's memory (issue 6, target 5): RSS idle <= 30 MB, <= 32 MB more per
// 100k live tracked connections, and the kernel maps' memlock from bpftool. The connections are
// real loopback sockets held open by this process: both ends are local, so each TCP connection
// is two tracked connections (one outbound, one inbound) and 100k tracked take 50k connections,
// 100k fds. Client ends bind distinct 127.0.1.x sources so the ephemeral port range never runs out.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/log.h"
#include "bench/agent_readings.h"
#include "bench/bench_main.h"
#include "bench/paired_runs.h"

namespace netwatch::bench {
namespace {

struct Options {
  size_t tracked = 100000;  // live tracked connections to reach (two per loopback connection)
  size_t steps = 4;
  double idle_seconds = 5;
  size_t max_connections = 262144;  // the agent's --max-connections: above tracked, so none is evicted
  AgentCommand agent{default_netwatch_binary(), 19473, {}};
};

constexpr double kMiB = 1024.0 * 1024.0;

std::string sys_error(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Both ends of many loopback connections, held by worker processes of this one: the hard limit
// on open files (20000 here, and no CAP_SYS_RESOURCE to raise it) caps a process, not the machine.
// Each worker listens on 127.0.0.1, connects from a 127.0.1.x source of its own and accepts, and
// holds both ends until its pipe from us closes; it dies with us (PR_SET_PDEATHSIG).
class LoopbackConnections {
 public:
  ~LoopbackConnections() { close_all(); }
  size_t size() const { return total_; }

  // Opens n more connections in workers of at most per_worker each, one worker at a time with a
  // pause between them, so the agent's ring buffer drains as on a node where connections
  // accumulate over time.
  void open(size_t n, size_t per_worker) {
    while (n > 0) {
      size_t count = std::min(n, per_worker);
      start_worker(count);
      n -= count;
      total_ += count;
      sleep_unless_stopped(std::chrono::milliseconds(200));
    }
  }
  void close_all() {
    for (Worker& w : workers_) close(w.pipe_fd);
    for (Worker& w : workers_) waitpid(w.pid, nullptr, 0);
    workers_.clear();
    total_ = 0;
  }

 private:
  struct Worker {
    pid_t pid;
    int pipe_fd;  // our write end: closing it tells the worker to close everything and exit
  };

  static void hold(size_t count, uint32_t source, int report_fd, int hold_fd) {
    std::vector<int> fds;
    auto fail = [&](const std::string& what) {
      std::string m = sys_error(what);
      ssize_t ignored = write(report_fd, m.data(), m.size());
      (void)ignored;
      _exit(1);
    };
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(server);
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&server), sizeof(server)) != 0 ||
        listen(listener, 4096) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&server), &len) != 0)
      fail("listening on 127.0.0.1");
    for (size_t i = 0; i < count; ++i) {
      int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (client < 0) fail("socket");
      sockaddr_in from{};
      from.sin_family = AF_INET;
      from.sin_addr.s_addr = htonl(source);
      int one = 1;
      setsockopt(client, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      if (bind(client, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) fail("binding a 127.0.1.x source");
      if (connect(client, reinterpret_cast<sockaddr*>(&server), sizeof(server)) != 0) fail("connect");
      int accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (accepted < 0) fail("accept");
      fds.push_back(client);
      fds.push_back(accepted);
    }
    ssize_t ignored = write(report_fd, "ok", 2);
    (void)ignored;
    char byte;
    while (read(hold_fd, &byte, 1) != 0) {  // until the parent closes its end, or dies
    }
    _exit(0);
  }

  void start_worker(size_t count) {
    int report[2], hold_pipe[2];
    if (pipe2(report, O_CLOEXEC) != 0 || pipe2(hold_pipe, O_CLOEXEC) != 0) throw util::FatalError(sys_error("pipe2"));
    uint32_t source = 0x7f000100u + 1 + static_cast<uint32_t>(workers_.size());  // 127.0.1.1, .2, ...
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) throw util::FatalError(sys_error("fork"));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      close(report[0]);
      close(hold_pipe[1]);
      for (const Worker& w : workers_) close(w.pipe_fd);
      hold(count, source, report[1], hold_pipe[0]);
    }
    close(report[1]);
    close(hold_pipe[0]);
    workers_.push_back({pid, hold_pipe[1]});
    std::string answer(512, '\0');
    ssize_t n = read(report[0], answer.data(), answer.size());
    close(report[0]);
    answer.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (answer != "ok") throw util::FatalError("a connection-holding worker failed: " + answer);
  }

  std::vector<Worker> workers_;
  size_t total_ = 0;
};

// Connections per worker: two fds each, inside the soft open-file limit (raised to the hard one).
size_t connections_per_worker() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
  getrlimit(RLIMIT_NOFILE, &r);
  size_t fds = r.rlim_cur == RLIM_INFINITY ? 1'000'000 : static_cast<size_t>(r.rlim_cur);
  if (fds < 256) throw util::FatalError("the open-file limit (" + std::to_string(fds) + ") is too low");
  return std::min<size_t>((fds - 128) / 2, 20000);  // 20000 per 127.0.1.x source: inside the port range
}

struct Point {
  double tracked = 0;  // netwatch_tracked_connections
  ProcessUsage usage;
};

// Waits for the agent to publish what it has seen (two publish intervals), then reads it.
Point settle_and_read(const nwtest::AgentProcess& agent, double seconds) {
  sleep_unless_stopped(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  return {metric_sum(agent.metrics_text(), "netwatch_tracked_connections"), process_usage(agent.pid())};
}

int run(const Options& opt) {
  size_t per_worker = connections_per_worker();
  std::printf("netwatch_memory: %s\n", machine_line().c_str());
  std::string flags;
  for (const std::string& f : opt.agent.flags) flags += " " + f;
  std::printf("agent flags:%s; %zu tracked connections in %zu steps, up to %zu connections per holding process\n\n",
              flags.c_str(), opt.tracked, opt.steps, per_worker);
  std::fflush(stdout);

  auto agent = start_agent(opt.agent, g_stop);
  Point idle = settle_and_read(*agent, opt.idle_seconds);
  std::vector<MapMemory> maps = maps_held_by(agent->pid());
  std::string before = agent->metrics_text();

  LoopbackConnections connections;
  std::vector<Point> points = {idle};
  for (size_t step = 1; step <= opt.steps; ++step) {
    size_t want = opt.tracked * step / opt.steps / 2;
    connections.open(want - connections.size(), per_worker);
    points.push_back(settle_and_read(*agent, 3));
  }
  std::string after = agent->metrics_text();
  // Again with the connections open: the young-socket table (a hash) holds idle connections.
  std::vector<MapMemory> loaded_maps = maps_held_by(agent->pid());
  // /api/v1/connections lists connections in a snapshot of its own, built on request: its cost.
  std::string listing = agent->get("/api/v1/connections?limit=100000");
  Point listed{points.back().tracked, process_usage(agent->pid())};
  connections.close_all();
  Point closed = settle_and_read(*agent, 3);

  std::printf("%-28s %12s %10s %10s\n", "state", "tracked", "RSS MiB", "peak MiB");
  for (size_t i = 0; i < points.size(); ++i)
    std::printf("%-28s %12.0f %10.1f %10.1f\n", i == 0 ? "idle" : ("step " + std::to_string(i)).c_str(),
                points[i].tracked, points[i].usage.rss_bytes / kMiB, points[i].usage.hwm_bytes / kMiB);
  std::printf("%-28s %12.0f %10.1f %10.1f\n", "after GET connections", listed.tracked, listed.usage.rss_bytes / kMiB,
              listed.usage.hwm_bytes / kMiB);
  std::printf("%-28s %12.0f %10.1f %10.1f\n", "all closed", closed.tracked, closed.usage.rss_bytes / kMiB,
              closed.usage.hwm_bytes / kMiB);

  const Point& full = points.back();
  double per_100k = full.tracked > 0
                        ? (static_cast<double>(full.usage.rss_bytes) - static_cast<double>(idle.usage.rss_bytes)) /
                              kMiB * 100000 / full.tracked
                        : 0;
  double peak_per_100k = full.tracked > 0
                             ? (static_cast<double>(full.usage.hwm_bytes) - static_cast<double>(idle.usage.rss_bytes)) /
                                   kMiB * 100000 / full.tracked
                             : 0;
  double lost = metric_sum(after, "netwatch_events_lost_total") - metric_sum(before, "netwatch_events_lost_total");
  double evicted = metric_sum(after, "netwatch_connection_evictions_total");
  std::printf("\n%-44s %10s %10s\n", "measure", "value", "target");
  std::printf("%-44s %10.1f %10s  %s\n", "RSS idle, MiB", idle.usage.rss_bytes / kMiB, "<= 30",
              idle.usage.rss_bytes / kMiB <= 30 ? "met" : "MISSED");
  std::printf("%-44s %10.1f %10s  %s\n", "RSS growth per 100k tracked, MiB", per_100k, "<= 32",
              per_100k <= 32 ? "met" : "MISSED");
  std::printf("%-44s %10.1f %10s\n", "peak RSS growth per 100k tracked, MiB", peak_per_100k, "-");
  std::printf("%-44s %10.1f %10s\n", "GET /api/v1/connections?limit=100000, MiB", listing.size() / kMiB, "-");
  std::printf("%-44s %10.0f %10s\n", "events lost while opening", lost, "0");
  std::printf("%-44s %10.0f %10s\n", "evictions", evicted, "0");

  std::printf("\nkernel maps held by the agent (bpftool map show)\n%-8s %-20s %-16s %12s %14s %14s\n", "id", "name",
              "type", "max_entries", "memlock KiB", "at full KiB");
  uint64_t memlock = 0, loaded_memlock = 0;
  for (const MapMemory& m : maps) {
    auto at_full =
        std::find_if(loaded_maps.begin(), loaded_maps.end(), [&](const MapMemory& l) { return l.id == m.id; });
    uint64_t loaded = at_full == loaded_maps.end() ? 0 : at_full->memlock_bytes;
    std::printf("%-8u %-20s %-16s %12llu %14.1f %14.1f\n", m.id, m.name.c_str(), m.type.c_str(),
                static_cast<unsigned long long>(m.max_entries), m.memlock_bytes / 1024.0, loaded / 1024.0);
    memlock += m.memlock_bytes;
    loaded_memlock += loaded;
  }
  std::printf("%-8s %-20s %-16s %12s %14.1f %14.1f\n", "total", "", "", "", memlock / 1024.0, loaded_memlock / 1024.0);
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
      "netwatch_memory: the agent's RSS idle and per 100k tracked loopback connections, and its BPF "
      "maps' memlock (needs root)"};
  app.add_option("--tracked", opt.tracked, "live tracked connections to reach (two per loopback connection)")
      ->check(CLI::Range(size_t{2}, size_t{4000000}))
      ->capture_default_str();
  app.add_option("--steps", opt.steps, "measure after each of this many equal steps")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--idle-seconds", opt.idle_seconds, "wait before the idle measure")->capture_default_str();
  add_agent_options(app, opt.agent);
  app.add_option("--max-connections", opt.max_connections, "the agent's --max-connections")->capture_default_str();
  app.add_flag("--smoke", smoke, "a short run that checks the benchmark works: 2000 tracked connections");
  CLI11_PARSE(app, argc, argv);
  if (smoke) opt.tracked = 2000, opt.steps = 1, opt.idle_seconds = 2;
  opt.agent.flags.insert(opt.agent.flags.begin(), {"--max-connections", std::to_string(opt.max_connections)});
  netwatch::util::set_log_level(netwatch::util::LogLevel::warn);
  install_stop_signals();
  return guarded_main("netwatch_memory", [&] { return run(opt); });
}
