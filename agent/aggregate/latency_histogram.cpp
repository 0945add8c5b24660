#include "aggregate/latency_histogram.h"

namespace netwatch::aggregate {
using detail::kBoundsNs;

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

}  // namespace netwatch::aggregate
