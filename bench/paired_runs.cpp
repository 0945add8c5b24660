#include "bench/paired_runs.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

namespace netwatch::bench {
namespace {

// Linear interpolation between closest ranks, like numpy's default percentile.
double percentile(const std::vector<double>& sorted, double p) {
  double rank = p * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(rank);
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

}  // namespace

RatioSummary summarize(std::vector<double> values) {
  if (values.empty()) return {};
  std::sort(values.begin(), values.end());
  return {percentile(values, 0.5), percentile(values, 0.25), percentile(values, 0.75), values.front(), values.back()};
}

std::vector<PairedSample> run_pairs(int pairs, const std::function<double(bool with_agent)>& measure) {
  std::vector<PairedSample> samples;
  for (int i = 0; i < pairs; ++i) {
    PairedSample s;
    s.with_first = i % 2 == 1;
    if (s.with_first) {
      s.with = measure(true);
      s.without = measure(false);
    } else {
      s.without = measure(false);
      s.with = measure(true);
    }
    samples.push_back(s);
  }
  return samples;
}

std::string render_pairs(const std::string& title, const std::vector<PairedSample>& samples, double unit_scale,
                         const std::string& unit, double target) {
  std::string out = title + "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%-6s %-8s %16s %16s %8s\n", "pair", "first", ("without " + unit).c_str(),
                ("with " + unit).c_str(), "ratio");
  out += line;
  std::vector<double> ratios;
  for (size_t i = 0; i < samples.size(); ++i) {
    const PairedSample& s = samples[i];
    std::snprintf(line, sizeof(line), "%-6zu %-8s %16.2f %16.2f %8.4f\n", i + 1, s.with_first ? "with" : "without",
                  s.without / unit_scale, s.with / unit_scale, s.ratio());
    out += line;
    ratios.push_back(s.ratio());
  }
  RatioSummary r = summarize(ratios);
  std::snprintf(line, sizeof(line),
                "median ratio %.4f  (IQR %.4f-%.4f, min %.4f, max %.4f, %zu pairs)  target >= %.2f: %s\n", r.median,
                r.p25, r.p75, r.min, r.max, samples.size(), target, r.median >= target ? "met" : "MISSED");
  out += line;
  return out;
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string one, five, fifteen;
  f >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

}  // namespace netwatch::bench
