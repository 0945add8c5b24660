#include "agent/latency_histogram.h"

namespace netwatch {
namespace {

constexpr std::array<uint64_t, kLatencyBucketsSeconds.size()> bounds_ns() {
  std::array<uint64_t, kLatencyBucketsSeconds.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = static_cast<uint64_t>(kLatencyBucketsSeconds[i] * 1e9 + 0.5);
  return ns;
}
constexpr auto kBoundsNs = bounds_ns();

}  // namespace

void LatencyHistogram::observe_ns(uint64_t ns) {
  size_t i = 0;
  while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
  ++buckets[i];
  ++count;
  sum_ns += ns;
}

double LatencyHistogram::quantile(double q) const {
  if (count == 0) return 0;
  double rank = q * static_cast<double>(count);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (static_cast<double>(cumulative + buckets[i]) >= rank && buckets[i] > 0) {
      if (i == kBoundsNs.size()) return kLatencyBucketsSeconds.back();  // +Inf: the highest finite bound
      double lower = i == 0 ? 0 : kLatencyBucketsSeconds[i - 1];
      double upper = kLatencyBucketsSeconds[i];
      return lower + (upper - lower) * (rank - static_cast<double>(cumulative)) / static_cast<double>(buckets[i]);
    }
    cumulative += buckets[i];
  }
  return kLatencyBucketsSeconds.back();
}

}  // namespace netwatch
