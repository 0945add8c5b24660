// What the kernel side reports about itself, as plain data: events produced and lost, state
// maps that were full, and each program's run time. The probe set fills them; the snapshot and
// /metrics carry them without depending on the loader.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "event/event.h"

namespace netwatch::event {

struct KernelCounters {
  std::array<uint64_t, kEventTypeCount> emitted{};
  std::array<uint64_t, kEventTypeCount> lost{};
  uint64_t state_full = 0;
  uint64_t state_spilled = 0;  // young sockets' state in sk_storage: sock_table was full
  uint64_t listeners_full = 0;  // listeners whose owner was not recorded: the listeners map was full

  uint64_t total_lost() const;
};

struct ProgramStats {
  std::string name;
  uint32_t id = 0;
  uint64_t run_time_ns = 0;  // non-zero only with kernel.bpf_stats_enabled=1
  uint64_t run_cnt = 0;
};

}  // namespace netwatch::event
