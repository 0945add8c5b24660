#include "aggregate/latency_histogram.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace netwatch::aggregate
