#include "agent/latency_histogram.h"

#include <gtest/gtest.h>

namespace netwatch {
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
}  // namespace netwatch
