#include "aggregate/latency_histogram.h"

namespace netwatch::aggregate {
using detail::kBoundsNs;

void LatencyHistogram::add_native(int index, uint64_t n) {
  if (index == detail::kNativeZeroIndex) {
    native_zero += n;
    return;
  }
  if (native_buckets.empty()) native_first = index;
  if (index < native_first) {
    native_buckets.insert(native_buckets.begin(), static_cast<size_t>(native_first - index), 0);
    native_first = index;
  }
  size_t at = static_cast<size_t>(index - native_first);
  if (at >= native_buckets.size()) native_buckets.resize(at + 1, 0);
  native_buckets[at] += n;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  count += other.count;
  sum_ns += other.sum_ns;
  for (size_t b = 0; b < buckets.size(); ++b) buckets[b] += other.buckets[b];
  native_zero += other.native_zero;
  for (size_t k = 0; k < other.native_buckets.size(); ++k)
    if (other.native_buckets[k]) add_native(other.native_first + static_cast<int>(k), other.native_buckets[k]);
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

}  // namespace netwatch::aggregate
