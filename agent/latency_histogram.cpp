#include "agent/latency_histogram.h"

#include <bit>

namespace netwatch {
namespace {

constexpr std::array<uint64_t, kLatencyBucketsSeconds.size()> bounds_ns() {
  std::array<uint64_t, kLatencyBucketsSeconds.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = static_cast<uint64_t>(kLatencyBucketsSeconds[i] * 1e9 + 0.5);
  return ns;
}
constexpr auto kBoundsNs = bounds_ns();

// Consecutive bounds are at least 2x apart, so a power-of-two range [2^k, 2^(k+1)) holds at most
// one bound: the bucket of ns is the first bound >= 2^k, or the next one if ns is above that
// bound. kFirstAtLeast[k] is that first bound's index (kBoundsNs.size() when none is left).
constexpr std::array<uint8_t, 64> first_bound_at_least_pow2() {
  for (size_t i = 1; i < kBoundsNs.size(); ++i)
    if (kBoundsNs[i] < 2 * kBoundsNs[i - 1]) throw "bounds closer than 2x: observe_ns() needs a search";
  std::array<uint8_t, 64> first{};
  for (size_t k = 0; k < 64; ++k) {
    size_t i = 0;
    while (i < kBoundsNs.size() && kBoundsNs[i] < (uint64_t{1} << k)) ++i;
    first[k] = static_cast<uint8_t>(i);
  }
  return first;
}
constexpr auto kFirstAtLeast = first_bound_at_least_pow2();

}  // namespace

void LatencyHistogram::observe_ns(uint64_t ns) {
  size_t i = 0;
  if (ns > 0) {
    i = kFirstAtLeast[63 - std::countl_zero(ns)];
    if (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
  }
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
