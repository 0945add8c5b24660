// With the agent / without, measured as interleaved pairs on a noisy machine: each pair runs both
// sides back to back, alternating which goes first, so drift in the background load falls on
// both sides alike; the verdict is the median of the per-pair ratios, with their spread.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace netwatch::bench {

struct PairedSample {
  double without = 0;  // the load's own measure (bits/s, connections/s, ...) without the agent
  double with = 0;     // and with the agent running
  bool with_first = false;
  double ratio() const { return without > 0 ? with / without : 0; }
};

struct RatioSummary {
  double median = 0, p25 = 0, p75 = 0, min = 0, max = 0;
};
RatioSummary summarize(std::vector<double> values);  // empty input: all zero

// Calls measure(with_agent) twice per pair, alternating the order from pair to pair.
std::vector<PairedSample> run_pairs(int pairs, const std::function<double(bool with_agent)>& measure);

// The per-pair table and the summary line: "<title>" header, values divided by unit_scale and
// printed with unit, then "median ratio ... (target >= X): met|MISSED".
std::string render_pairs(const std::string& title, const std::vector<PairedSample>& samples, double unit_scale,
                         const std::string& unit, double target);

// Load averages from /proc/loadavg ("1.23 0.98 0.75"), for the report: the machine is shared.
std::string load_average();

}  // namespace netwatch::bench
