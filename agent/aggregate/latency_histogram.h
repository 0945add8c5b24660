// A fixed-bucket latency histogram, cheap to update on the event path and rendered as a
// Prometheus histogram at scrape time.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace netwatch::aggregate {

// Upper bounds in seconds. From 25 us (loopback, same-rack RTT) through WAN round trips
// (10-300 ms) to the SYN retransmission timeouts a failing connect waits for (1 s, 3 s, 7 s).
inline constexpr std::array<double, 18> kLatencyBucketsSeconds = {25e-6,  50e-6,  100e-6, 250e-6, 500e-6, 1e-3,
                                                                  2.5e-3, 5e-3,   10e-3,  25e-3,  50e-3,  100e-3,
                                                                  250e-3, 500e-3, 1.0,    2.5,    5.0,    10.0};

namespace detail {

constexpr std::array<uint64_t, kLatencyBucketsSeconds.size()> bounds_ns() {
  std::array<uint64_t, kLatencyBucketsSeconds.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = static_cast<uint64_t>(kLatencyBucketsSeconds[i] * 1e9 + 0.5);
  return ns;
}
inline constexpr auto kBoundsNs = bounds_ns();
// The same with +Inf's bound after them, which nothing is above: observe_ns() needs no range check.
constexpr std::array<uint64_t, kBoundsNs.size() + 1> bounds_ns_and_inf() {
  std::array<uint64_t, kBoundsNs.size() + 1> ns{};
  for (size_t i = 0; i < kBoundsNs.size(); ++i) ns[i] = kBoundsNs[i];
  ns.back() = UINT64_MAX;
  return ns;
}
inline constexpr auto kBoundsNsAndInf = bounds_ns_and_inf();

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
inline constexpr auto kFirstAtLeast = first_bound_at_least_pow2();

}  // namespace detail

struct LatencyHistogram {
  std::array<uint64_t, kLatencyBucketsSeconds.size() + 1> buckets{};  // per bucket; last is +Inf
  uint64_t count = 0;
  uint64_t sum_ns = 0;

  // Inline: it runs for every RTT sample, and the call cost as much as the bucket choice.
  void observe_ns(uint64_t ns) {
    // ns | 1: 0 falls in the first power-of-two range, [1, 2), whose first bound is bucket 0's.
    size_t i = detail::kFirstAtLeast[63 - std::countl_zero(ns | 1)];
    if (ns > detail::kBoundsNsAndInf[i]) ++i;
    ++buckets[i];
    ++count;
    sum_ns += ns;
  }
  // Adds another histogram's observations (a checkpoint's, a folded key's).
  void merge(const LatencyHistogram& other) {
    count += other.count;
    sum_ns += other.sum_ns;
    for (size_t b = 0; b < buckets.size(); ++b) buckets[b] += other.buckets[b];
  }
  // Estimated quantile in seconds, interpolated inside the bucket like PromQL's
  // histogram_quantile(); 0 when empty.
  double quantile(double q) const;
};

}  // namespace netwatch::aggregate
