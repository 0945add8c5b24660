#include "aggregate/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace netwatch::aggregate {
namespace {

TEST(LatencyHistogram, bucket_bounds_are_inclusive_like_prometheus_le) {
  LatencyHistogram h;
  h.observe_ns(25'000);  // exactly 25us: le="2.5e-05"
  h.observe_ns(25'001);
  EXPECT_EQ(h.buckets[0], 1u);
  EXPECT_EQ(h.buckets[1], 1u);
  EXPECT_EQ(h.count, 2u);
  EXPECT_EQ(h.sum_ns, 50'001u);
}

TEST(LatencyHistogram, every_bound_and_its_neighbours_land_where_a_linear_search_puts_them) {
  std::vector<uint64_t> values = {0, 1, 2, 3, 1023, 1024, 1025, UINT64_MAX};
  for (double bound : kLatencyBucketsSeconds) {
    uint64_t ns = static_cast<uint64_t>(bound * 1e9 + 0.5);
    for (uint64_t v : {ns - 1, ns, ns + 1, ns / 2, ns * 2 - 1, ns * 2, ns * 2 + 1}) values.push_back(v);
  }
  for (int shift = 0; shift < 64; ++shift)
    for (uint64_t v : {uint64_t{1} << shift, (uint64_t{1} << shift) - 1}) values.push_back(v);
  for (uint64_t v : values) {
    size_t expected = 0;
    while (expected < kLatencyBucketsSeconds.size() &&
           v > static_cast<uint64_t>(kLatencyBucketsSeconds[expected] * 1e9 + 0.5))
      ++expected;
    LatencyHistogram h;
    h.observe_ns(v);
    EXPECT_EQ(h.buckets[expected], 1u) << v << " ns";
  }
}

TEST(LatencyHistogram, beyond_the_last_bound_goes_to_inf) {
  LatencyHistogram h;
  h.observe_ns(60'000'000'000ULL);
  EXPECT_EQ(h.buckets.back(), 1u);
}

TEST(LatencyHistogram, quantile_interpolates_within_the_bucket) {
  LatencyHistogram h;
  for (int i = 0; i < 100; ++i) h.observe_ns(3'000'000);  // all in (2.5ms, 5ms]
  EXPECT_NEAR(h.quantile(0.5), 0.00375, 1e-9);
  EXPECT_NEAR(h.quantile(0.99), 0.0025 + 0.0025 * 0.99, 1e-9);
  EXPECT_EQ(LatencyHistogram{}.quantile(0.5), 0.0);
}

// Prometheus's definition, verbatim in its steps (client_golang's observe: frexp, then the first of
// the schema's bounds >= the fraction by binary search); the oracle the bit tricks must match.
int prometheus_native_index(double seconds) {
  int exp = 0;
  double frac = std::frexp(seconds, &exp);
  const auto& b = detail::kSchema3Bounds;
  int j = static_cast<int>(std::lower_bound(b.begin(), b.end(), frac) - b.begin());
  return j + (exp - 1) * static_cast<int>(b.size());
}

// The upper bound of native bucket i: base^i, base = 2^(2^-3), computed without the table.
double native_upper_bound(int i) { return std::exp2(i / 8.0); }

int native_index_of(uint64_t ns) {
  LatencyHistogram h;
  h.observe_ns(ns);
  if (h.native_zero) return INT32_MIN;
  for (size_t k = 0; k < h.native_buckets.size(); ++k)
    if (h.native_buckets[k]) return h.native_first + static_cast<int>(k);
  return INT32_MAX;
}

TEST(LatencyHistogramNative, prometheus_table_is_base_to_the_index) {
  for (size_t j = 0; j < detail::kSchema3Bounds.size(); ++j)
    EXPECT_NEAR(detail::kSchema3Bounds[j] * 2, native_upper_bound(static_cast<int>(j)), 1e-15) << j;
}

TEST(LatencyHistogramNative, each_bucket_holds_base_to_i_minus_1_exclusive_to_base_to_i_inclusive) {
  // Every ns at and beside each bucket's bound in the range, where an off-by-one would show.
  for (int i = kNativeMinIndex; i <= kNativeMaxIndex; ++i) {
    double bound_ns = native_upper_bound(i) * 1e9;
    for (double d : {-2.0, -1.0, 0.0, 1.0, 2.0}) {
      uint64_t ns = static_cast<uint64_t>(std::floor(bound_ns) + d);
      if (ns <= kNativeZeroThresholdNs || ns > 256'000'000'000ULL) continue;  // the ends: tested below
      double seconds = static_cast<double>(ns) / 1e9;
      int index = native_index_of(ns);
      EXPECT_EQ(index, prometheus_native_index(seconds)) << ns << " ns";
      EXPECT_LE(seconds, native_upper_bound(index) * (1 + 1e-15)) << ns << " ns";
      EXPECT_GT(seconds, native_upper_bound(index - 1) * (1 - 1e-15)) << ns << " ns";
    }
  }
  // Seconds exactly a power of two (1953125 ns = 2^-9 s) are their bucket's inclusive upper bound.
  EXPECT_EQ(native_index_of(1'953'125), -9 * 8);
  EXPECT_EQ(native_index_of(1'953'126), -9 * 8 + 1);
  EXPECT_EQ(native_index_of(1'000'000'000), 0);
  EXPECT_EQ(native_index_of(1'000'000'001), 1);
}

TEST(LatencyHistogramNative, matches_prometheus_on_random_values_at_every_scale) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> log_seconds(-19.9, 7.9);
  for (int n = 0; n < 200'000; ++n) {
    uint64_t ns = static_cast<uint64_t>(std::exp2(log_seconds(rng)) * 1e9);
    ASSERT_EQ(native_index_of(ns), prometheus_native_index(static_cast<double>(ns) / 1e9)) << ns << " ns";
  }
}

TEST(LatencyHistogramNative, zero_bucket_and_clamping_at_the_ends) {
  EXPECT_EQ(native_index_of(0), INT32_MIN);
  EXPECT_EQ(native_index_of(kNativeZeroThresholdNs), INT32_MIN);  // <= 2^-20 s
  EXPECT_EQ(native_index_of(kNativeZeroThresholdNs + 1), kNativeMinIndex);
  EXPECT_EQ(native_index_of(256'000'000'000ULL), kNativeMaxIndex);  // 2^8 s is bucket 64's bound
  EXPECT_EQ(native_index_of(3'600'000'000'000ULL), kNativeMaxIndex);
  EXPECT_EQ(native_index_of(UINT64_MAX), kNativeMaxIndex);
}

TEST(LatencyHistogramNative, counts_and_sum_agree_with_the_classic_part) {
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> rtt_us(5.0, 2.0);
  LatencyHistogram h;
  for (int n = 0; n < 50'000; ++n) h.observe_ns(static_cast<uint64_t>(rtt_us(rng)) * 1000);
  uint64_t native = std::accumulate(h.native_buckets.begin(), h.native_buckets.end(), h.native_zero);
  EXPECT_EQ(native, h.count);
  EXPECT_EQ(std::accumulate(h.buckets.begin(), h.buckets.end(), uint64_t{0}), h.count);
  EXPECT_GE(h.native_first, kNativeMinIndex);
  EXPECT_LE(h.native_first + static_cast<int>(h.native_buckets.size()) - 1, kNativeMaxIndex);
}

TEST(LatencyHistogramNative, span_grows_both_ways_and_merge_adds_exactly) {
  LatencyHistogram a, b, both;
  for (uint64_t ns : {50'000ULL, 2'000'000ULL, 3'000ULL, 900ULL, 90'000'000'000ULL}) {
    a.observe_ns(ns);
    both.observe_ns(ns);
  }
  for (uint64_t ns : {7'000ULL, 400'000'000'000ULL, 50'000ULL}) {
    b.observe_ns(ns);
    both.observe_ns(ns);
  }
  EXPECT_EQ(a.native_first, native_index_of(3'000));
  EXPECT_EQ(a.native_first + static_cast<int>(a.native_buckets.size()) - 1, native_index_of(90'000'000'000ULL));
  a.merge(b);
  EXPECT_EQ(a.count, both.count);
  EXPECT_EQ(a.sum_ns, both.sum_ns);
  EXPECT_EQ(a.buckets, both.buckets);
  EXPECT_EQ(a.native_zero, both.native_zero);
  EXPECT_EQ(a.native_first, both.native_first);
  EXPECT_EQ(a.native_buckets, both.native_buckets);
}

TEST(LatencyHistogramNative, a_quantile_from_native_buckets_is_within_one_bucket_of_the_truth) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> rtt_us(6.0, 1.5);
  std::vector<uint64_t> values;
  LatencyHistogram h;
  for (int n = 0; n < 20'001; ++n) {
    values.push_back(static_cast<uint64_t>(rtt_us(rng)) * 1000 + 1000);
    h.observe_ns(values.back());
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99}) {
    double truth = static_cast<double>(values[static_cast<size_t>(q * (values.size() - 1))]) / 1e9;
    // The bucket the rank falls in, as histogram_quantile() finds it: the estimate lies inside it.
    double rank = q * static_cast<double>(h.count);
    uint64_t cumulative = h.native_zero;
    int index = h.native_first;
    for (size_t k = 0; k < h.native_buckets.size(); ++k) {
      cumulative += h.native_buckets[k];
      index = h.native_first + static_cast<int>(k);
      if (static_cast<double>(cumulative) >= rank) break;
    }
    double base = std::exp2(1.0 / 8);
    EXPECT_GT(truth, native_upper_bound(index - 1) / base) << q;
    EXPECT_LE(truth, native_upper_bound(index) * base) << q;
  }
}

}  // namespace
}  // namespace netwatch::aggregate
