// The real `netwatch agent` as a child of a benchmark (tests/support/agent_process.h), and what
// benchmarks read from it: sums over /metrics, its CPU time and memory from /proc, and the BPF
// maps it holds. Benchmarks measure the binary a node would run, not a library built into them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/agent_process.h"

namespace CLI {
class App;
}

namespace netwatch::bench {

struct AgentCommand {
  std::string binary;              // the netwatch executable
  uint16_t port = 0;               // --listen 127.0.0.1:<port>
  std::vector<std::string> flags;  // more `netwatch agent` flags
};

// The options every agent benchmark takes to set `agent`: --agent-port, --netwatch, --agent-flag.
void add_agent_options(CLI::App& app, AgentCommand& agent);

// What /proc says about a process at one moment.
struct ProcessUsage {
  double cpu_seconds = 0;  // utime + stime, all threads
  uint64_t rss_bytes = 0;  // VmRSS
  uint64_t hwm_bytes = 0;  // VmHWM: the peak RSS so far
};
ProcessUsage process_usage(pid_t pid);

// A BPF map a process holds, as `bpftool map show` reports it.
struct MapMemory {
  uint32_t id = 0;
  std::string name, type;
  uint64_t max_entries = 0;
  uint64_t memlock_bytes = 0;
};
// The maps a process holds open (their ids from /proc/<pid>/fdinfo), described by bpftool.
std::vector<MapMemory> maps_held_by(pid_t pid);

// Starts the agent (no pins: a run leaves nothing attached for the next; output in a memory file;
// a process group) and returns once /healthz answers 200; throws when the port is taken, or with
// the agent's output when it exits or is not ready within 20 s.
std::unique_ptr<nwtest::AgentProcess> start_agent(const AgentCommand& command, const std::atomic<bool>& stop);

// Sum over every sample of one metric in Prometheus text (all label sets); 0 when absent.
double metric_sum(std::string_view exposition, std::string_view name);
// Samples (lines that are not comments) in Prometheus text: the series a scrape carries.
size_t series_count(std::string_view exposition);

// The netwatch binary built next to the benchmarks.
std::string default_netwatch_binary();

}  // namespace netwatch::bench
