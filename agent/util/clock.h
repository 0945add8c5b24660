// The one monotonic clock: CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() reads, so that the
// kernel's event timestamps and the agent's own times compare directly.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace netwatch::util {

// CLOCK_MONOTONIC now, in nanoseconds.
inline uint64_t monotonic_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1'000'000'000ULL + uint64_t(t.tv_nsec);
}

// The same clock for std::chrono deadlines and sleeps.
struct MonotonicClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<MonotonicClock>;
  static constexpr bool is_steady = true;
  static time_point now() { return time_point(duration(static_cast<rep>(monotonic_ns()))); }
};

// Converts CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) to Unix-epoch nanoseconds.
class WallClock {
 public:
  WallClock() {  // measures the offset once
    timespec real{};
    uint64_t mono = monotonic_ns();
    clock_gettime(CLOCK_REALTIME, &real);
    offset_ns_ = uint64_t(real.tv_sec) * 1'000'000'000ULL + uint64_t(real.tv_nsec) - mono;
  }
  uint64_t to_unix_ns(uint64_t monotonic_ns) const { return monotonic_ns + offset_ns_; }

 private:
  uint64_t offset_ns_;
};

}  // namespace netwatch::util
