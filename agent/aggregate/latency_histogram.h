// A latency histogram, cheap to update on the event path and rendered at scrape time both as a
// classic Prometheus histogram (fixed buckets) and as a native one (sparse exponential buckets).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

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

// Native buckets (Prometheus native histograms, schema 3): bucket index i holds the seconds in
// (2^((i-1)/8), 2^(i/8)], a growth of 9 % per bucket, so a quantile is within 9 % of the truth at
// every scale. A value is seconds = ns / 1e9 (the double nearest it, as Prometheus would observe it).
// Values <= the zero threshold, 2^-20 s (953 ns, below the 1 us the kernel's srtt resolves), go to
// the zero bucket; every other value has an index >= kNativeMinIndex, and indexes above
// kNativeMaxIndex (2^8 s, longer than any RTT or connect wait) are counted in kNativeMaxIndex.
inline constexpr int kNativeSchema = 3;
inline constexpr double kNativeZeroThreshold = 0x1p-20;
inline constexpr uint64_t kNativeZeroThresholdNs = 953;  // the largest ns with ns / 1e9 <= 2^-20
static_assert(953 / 1e9 <= kNativeZeroThreshold && 954 / 1e9 > kNativeZeroThreshold);
inline constexpr int kNativeMinIndex = -20 * 8 + 1;
inline constexpr int kNativeMaxIndex = 8 * 8;

namespace detail {

// Prometheus's own table of schema 3's bounds within [0.5, 1) (client_golang's
// nativeHistogramBounds, the server's exponentialBounds): the bounds are these doubles exactly.
inline constexpr std::array<double, 8> kSchema3Bounds = {0.5,
                                                         0.5452538663326288,
                                                         0.5946035575013605,
                                                         0.6484197773255048,
                                                         0.7071067811865475,
                                                         0.7711054127039704,
                                                         0.8408964152537144,
                                                         0.9170040432046711};

// The native index of ns, by Prometheus's definition: the double nearest ns / 1e9 is 1.m * 2^e,
// and its index is 8e + the number of those bounds below 1.m / 2 (client_golang: frexp and a
// binary search). kNativeZeroIndex for the zero bucket; clamped to kNativeMaxIndex. The event path
// reads it from kNativeSlots instead; this builds that table and is its specification.
inline constexpr int kNativeZeroIndex = kNativeMinIndex - 1;  // never in a span: the zero bucket
constexpr int native_index_of_ns(uint64_t ns) {
  if (ns <= kNativeZeroThresholdNs) return kNativeZeroIndex;
  uint64_t bits = std::bit_cast<uint64_t>(static_cast<double>(ns) / 1e9);
  int exponent = static_cast<int>(bits >> 52) - 1023;
  double fraction = std::bit_cast<double>((bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1022} << 52));  // [0.5, 1)
  int below = 0;
  for (double b : kSchema3Bounds) below += b < fraction;
  return std::min(exponent * 8 + below, kNativeMaxIndex);
}

// The same by table, without floating point: ns in [2^k, 2^(k+1)) is in slot (k, the 4 bits after
// its leading one). Native bounds are 9 % apart and a slot at most 6.25 % wide, so a slot holds at
// most one: the index is the slot's index at its start, plus one above its threshold (the
// largest ns still in that index).
struct NativeSlot {
  int32_t index = 0;
  uint64_t threshold = UINT64_MAX;
};
constexpr std::array<std::array<NativeSlot, 16>, 64> native_slots() {
  std::array<std::array<NativeSlot, 16>, 64> slots{};
  for (int k = 4; k < 64; ++k) {
    for (uint64_t s = 0; s < 16; ++s) {
      uint64_t lo = (uint64_t{1} << k) + (s << (k - 4)), hi = lo + (uint64_t{1} << (k - 4)) - 1;
      NativeSlot& slot = slots[k][s];
      slot.index = native_index_of_ns(lo);
      int top = native_index_of_ns(hi);
      if (top == slot.index) continue;
      if (top != slot.index + 1) throw "two native bounds in one slot";
      while (lo < hi) {  // the largest ns of slot.index: binary search in [lo, hi)
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (native_index_of_ns(mid) == slot.index) lo = mid;
        else hi = mid - 1;
      }
      slot.threshold = lo;
    }
  }
  for (int k = 0; k < 4; ++k)  // ns < 16
    for (NativeSlot& slot : slots[k]) slot.index = kNativeZeroIndex;
  return slots;
}
inline constexpr auto kNativeSlots = native_slots();

// k: the bit of ns's leading one (0 for ns 0), which the classic bucket choice computes too.
// rotr: below k = 4 the slot bits are garbage, and every slot there is the zero bucket.
inline int native_index(uint64_t ns, int k) {
  const NativeSlot& slot = kNativeSlots[k][std::rotr(ns, k - 4) & 15];
  return slot.index + (ns > slot.threshold);
}

}  // namespace detail

// Every observation counts once in the classic buckets and once in the native ones: count and
// sum_ns are both's, and the native counts (zero bucket included) add up to count.
struct LatencyHistogram {
  std::array<uint64_t, kLatencyBucketsSeconds.size() + 1> buckets{};  // per bucket; last is +Inf
  uint64_t count = 0;
  uint64_t sum_ns = 0;
  // Native: native_buckets[k] counts index native_first + k. The span grows to the lowest and
  // highest index observed (at most kNativeMaxIndex - kNativeMinIndex + 1 = 224 counts); a
  // histogram that sees one order of magnitude holds about 27.
  uint64_t native_zero = 0;
  int32_t native_first = 0;
  std::vector<uint64_t> native_buckets;

  // Inline: it runs for every RTT sample, and the call cost as much as the bucket choice.
  void observe_ns(uint64_t ns) {
    // ns | 1: 0 falls in the first power-of-two range, [1, 2), whose first bound is bucket 0's.
    int k = 63 - std::countl_zero(ns | 1);
    size_t i = detail::kFirstAtLeast[k];
    if (ns > detail::kBoundsNsAndInf[i]) ++i;
    ++buckets[i];
    ++count;
    sum_ns += ns;
    int index = detail::native_index(ns, k);
    size_t at = static_cast<size_t>(index - native_first);  // below native_first: wraps to huge
    if (at < native_buckets.size()) ++native_buckets[at];
    else add_native(index, 1);  // a new index, or the zero bucket (never in the span)
  }
  // Counts n in native bucket `index` (kNativeMinIndex..kNativeMaxIndex; detail::kNativeZeroIndex:
  // the zero bucket), growing the span.
  void add_native(int index, uint64_t n);
  // Adds another histogram's observations, native ones included (a checkpoint's, a folded key's).
  void merge(const LatencyHistogram& other);
  // Estimated quantile in seconds, interpolated inside the bucket like PromQL's
  // histogram_quantile(); 0 when empty.
  double quantile(double q) const;
};

}  // namespace netwatch::aggregate
