#include "bench/cost_report.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace netwatch::bench {
namespace {

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

const ProgramCost* find(const CostRun& run, const std::string& path, const char* source) {
  for (const ProgramCost& p : run.programs)
    if (p.path == path && p.source == source) return &p;
  return nullptr;
}

}  // namespace

std::vector<PathVerdict> judge(const CostRun& run) {
  std::vector<PathVerdict> out;
  for (const ProgramCost& p : run.programs) {
    if (p.source != kNetwatch && p.source.rfind(kCandidatePrefix, 0) != 0) continue;
    const ProgramCost* empty = find(run, p.path, kEmpty);
    if (!empty) continue;
    auto target = run.peer_for_path.find(p.path);
    for (const std::string& label : run.peer_labels) {
      const ProgramCost* peer = find(run, p.path, label.c_str());
      if (!peer) continue;
      PathVerdict v{p.path, p.tracepoint, p.source, label};
      v.target_peer = target != run.peer_for_path.end() && target->second == label;
      v.subject_ns = p.ns_per_hit();
      v.empty_ns = empty->ns_per_hit();
      v.peer_ns = peer->ns_per_hit();
      v.measured = p.hits && empty->hits && peer->hits;
      out.push_back(v);
    }
  }
  return out;
}

std::string render_text(const CostRun& run, const std::vector<PathVerdict>& verdicts, const Targets& targets) {
  std::string out;
  out += format("netwatch probe cost: %.1f s measured, run time from bpf_stats (%s)\n", run.seconds,
                run.accounting.c_str());
  out += "machine: " + run.machine + "\n";
  out += "load:    " + run.load + "\n";
  out += format("events:  %llu read, %llu lost\n", static_cast<unsigned long long>(run.events_read),
                static_cast<unsigned long long>(run.events_lost));
  for (const std::string& peer : run.peers) out += "peer:    " + peer + "\n";

  // Candidates bring long source names; the source and subject columns fit the longest.
  int w = 14;
  for (const ProgramCost& p : run.programs) w = std::max(w, static_cast<int>(p.source.size()) + 1);

  out += format("\n%-11s %-22s %-*s %-16s %10s %9s %8s\n", "path", "tracepoint", w, "source", "program", "hits",
                "hits/s", "ns/hit");
  for (const ProgramCost& p : run.programs) {
    double rate = run.seconds > 0 ? static_cast<double>(p.hits) / run.seconds : 0;
    std::string ns = p.hits ? format("%.1f", p.ns_per_hit()) : "-";
    out += format("%-11s %-22s %-*s %-16s %10llu %9.0f %8s\n", p.path.c_str(), p.tracepoint.c_str(), w,
                  p.source.c_str(), p.name.c_str(), static_cast<unsigned long long>(p.hits), rate, ns.c_str());
  }

  out += format("\n%-11s %-*s %8s %7s  %-14s %8s  %-15s %-16s %s\n", "path", w, "subject", "ns/hit", "empty", "peer",
                "peer ns", format("-empty <=%.0f", targets.max_over_empty_ns).c_str(),
                format("/peer <=%.2f", targets.max_vs_bpftrace).c_str(), "target");
  for (const PathVerdict& v : verdicts) {
    if (!v.measured) {
      out += format("%-11s %-*s %8s %7s  %-14s %8s  %-15s %-16s %s\n", v.path.c_str(), w, v.subject.c_str(), "-", "-",
                    v.peer.c_str(), "-", "-", "-", "not measured (no hits)");
      continue;
    }
    std::string over = format("%.1f %s", v.over_empty_ns(), v.over_empty_met(targets) ? "ok" : "MISS");
    std::string ratio = format("%.2f %s", v.vs_bpftrace(), v.vs_bpftrace_met(targets) ? "ok" : "MISS");
    const char* verdict = !v.target_peer ? "(context)" : v.met(targets) ? "met" : "MISSED";
    out += format("%-11s %-*s %8.1f %7.1f  %-14s %8.1f  %-15s %-16s %s\n", v.path.c_str(), w, v.subject.c_str(),
                  v.subject_ns, v.empty_ns, (v.peer + (v.target_peer ? "*" : "")).c_str(), v.peer_ns, over.c_str(),
                  ratio.c_str(), verdict);
  }
  out += "* the peer each path's target is judged against; the other rows are context\n";
  return out;
}

nlohmann::json render_json(const CostRun& run, const std::vector<PathVerdict>& verdicts, const Targets& targets) {
  nlohmann::json programs = nlohmann::json::array();
  for (const ProgramCost& p : run.programs)
    programs.push_back({{"path", p.path},
                        {"tracepoint", p.tracepoint},
                        {"source", p.source},
                        {"program", p.name},
                        {"id", p.id},
                        {"hits", p.hits},
                        {"run_time_ns", p.run_time_ns},
                        {"ns_per_hit", p.ns_per_hit()},
                        {"hits_per_second", run.seconds > 0 ? static_cast<double>(p.hits) / run.seconds : 0}});
  nlohmann::json paths = nlohmann::json::array();
  for (const PathVerdict& v : verdicts)
    paths.push_back({{"path", v.path},
                     {"tracepoint", v.tracepoint},
                     {"subject", v.subject},
                     {"peer", v.peer},
                     {"target_peer", v.target_peer},
                     {"measured", v.measured},
                     {"ns_per_hit", v.subject_ns},
                     {"empty_ns_per_hit", v.empty_ns},
                     {"peer_ns_per_hit", v.peer_ns},
                     {"minus_empty_ns", v.over_empty_ns()},
                     {"over_peer", v.vs_bpftrace()},
                     {"met", v.target_peer && v.met(targets)}});
  return {{"seconds", run.seconds},
          {"machine", run.machine},
          {"accounting", run.accounting},
          {"load", run.load},
          {"iperf3_bits_per_second", run.iperf_bits_per_second},
          {"events_read", run.events_read},
          {"events_lost", run.events_lost},
          {"peers", run.peers},
          {"targets", {{"max_minus_empty_ns", targets.max_over_empty_ns}, {"max_over_peer", targets.max_vs_bpftrace}}},
          {"programs", programs},
          {"paths", paths}};
}

}  // namespace netwatch::bench
