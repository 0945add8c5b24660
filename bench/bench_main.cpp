#include "bench/bench_main.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "util/log.h"
#include "bench/paired_runs.h"

namespace netwatch::bench {

std::atomic<bool> g_stop{false};

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int guarded_main(const char* name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const util::FatalError& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

void sleep_unless_stopped(std::chrono::milliseconds d) {
  auto deadline = std::chrono::steady_clock::now() + d;
  while (!g_stop && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(20), d));
  if (g_stop) throw util::FatalError("interrupted", 130);
}

std::string machine_line() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  utsname u{};
  uname(&u);
  return std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs, " + model + ", kernel " + u.release +
         ", load average " + load_average();
}

}  // namespace netwatch::bench
