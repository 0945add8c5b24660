#include "event/kernel_stats.h"

namespace netwatch::event {

uint64_t KernelCounters::total_lost() const {
  uint64_t sum = 0;
  for (uint64_t v : lost) sum += v;
  return sum;
}

}  // namespace netwatch::event
