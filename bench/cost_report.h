// What the probe-cost benchmark measured and how it is judged and printed. Pure: no kernel,
// no processes, so rendering and the verdicts can be tested on made-up numbers.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace netwatch::bench {

// Who a measured program belongs to; bpftrace peers use their own labels (bpftrace_peers.h).
inline constexpr const char* kNetwatch = "netwatch";
inline constexpr const char* kEmpty = "empty";
inline constexpr const char* kCandidatePrefix = "cand:";  // modified copies of netwatch's probes

struct ProgramCost {
  std::string path;        // "ACK", "connect", "retransmit", ...
  std::string tracepoint;  // "tcp_probe", ...
  std::string source;      // kNetwatch, kEmpty, a bpftrace peer's label or "cand:<name>"
  std::string name;        // the program's name
  uint32_t id = 0;
  uint64_t hits = 0;  // run_cnt during the window
  uint64_t run_time_ns = 0;

  double ns_per_hit() const { return hits ? static_cast<double>(run_time_ns) / static_cast<double>(hits) : 0; }
};

struct Targets {
  double max_over_empty_ns = 100;  // netwatch - empty, ns/hit
  double max_vs_bpftrace = 0.5;    // netwatch / bpftrace, ns/hit
};

struct CostRun {
  double seconds = 0;  // the measured window
  std::string machine;
  std::string accounting;  // how bpf_stats was turned on
  std::string load;        // one line describing the traffic
  double iperf_bits_per_second = 0;
  uint64_t events_read = 0;
  uint64_t events_lost = 0;
  std::vector<std::string> peers;                    // "label: what it is", for the report
  std::vector<std::string> peer_labels;              // sources that are bpftrace peers
  std::map<std::string, std::string> peer_for_path;  // path -> the peer its target is judged against
  std::vector<ProgramCost> programs;
};

// One path judged for one subject (netwatch or a candidate): its program against the empty
// program and the path's bpftrace peer on the same tracepoint.
struct PathVerdict {
  std::string path;
  std::string tracepoint;
  std::string subject;
  std::string peer;
  bool target_peer = false;  // the peer the target is judged against; others are context
  double subject_ns = 0;
  double empty_ns = 0;
  double peer_ns = 0;
  bool measured = false;  // all three had hits
  double over_empty_ns() const { return subject_ns - empty_ns; }
  double vs_bpftrace() const { return peer_ns > 0 ? subject_ns / peer_ns : 0; }
  bool over_empty_met(const Targets& t) const { return over_empty_ns() <= t.max_over_empty_ns; }
  bool vs_bpftrace_met(const Targets& t) const { return vs_bpftrace() <= t.max_vs_bpftrace; }
  bool met(const Targets& t) const { return measured && over_empty_met(t) && vs_bpftrace_met(t); }
};

// A verdict for every subject program (netwatch, candidates) against every peer on its path that
// has an empty program, in the order of run.programs.
std::vector<PathVerdict> judge(const CostRun& run);

std::string render_text(const CostRun& run, const std::vector<PathVerdict>& verdicts, const Targets& targets);
nlohmann::json render_json(const CostRun& run, const std::vector<PathVerdict>& verdicts, const Targets& targets);

}  // namespace netwatch::bench
