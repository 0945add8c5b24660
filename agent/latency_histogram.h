// A fixed-bucket latency histogram, cheap to update on the event path and rendered as a
// Prometheus histogram at scrape time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace netwatch {

// Upper bounds in seconds. From 25 us (loopback, same-rack RTT) through WAN round trips
// (10-300 ms) to the SYN retransmission timeouts a failing connect waits for (1 s, 3 s, 7 s).
inline constexpr std::array<double, 18> kLatencyBucketsSeconds = {
    25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
    25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0,  10.0};

struct LatencyHistogram {
  std::array<uint64_t, kLatencyBucketsSeconds.size() + 1> buckets{};  // per bucket; last is +Inf
  uint64_t count = 0;
  uint64_t sum_ns = 0;

  void observe_ns(uint64_t ns);
  // Estimated quantile in seconds, interpolated inside the bucket like PromQL's
  // histogram_quantile(); 0 when empty.
  double quantile(double q) const;
};

}  // namespace netwatch
