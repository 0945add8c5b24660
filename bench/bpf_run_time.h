// Kernel-side run time per BPF program (bpf_stats): turning the accounting on for the length
// of a benchmark, and reading run_time_ns / run_cnt of any program by id.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace netwatch::bench {

// Holds run-time accounting on while it lives. Prefers BPF_ENABLE_STATS (v5.8+): the kernel
// counts holders and turns accounting off when the last fd closes, even if this process is
// killed, and the kernel.bpf_stats_enabled sysctl that others may have set is never touched.
// Falls back to setting the sysctl and restoring its old value.
class RunTimeAccounting {
 public:
  RunTimeAccounting();  // throws FatalError when neither way works
  ~RunTimeAccounting();
  RunTimeAccounting(const RunTimeAccounting&) = delete;
  RunTimeAccounting& operator=(const RunTimeAccounting&) = delete;

  const char* method() const { return stats_fd_ >= 0 ? "BPF_ENABLE_STATS" : "kernel.bpf_stats_enabled"; }

 private:
  int stats_fd_ = -1;
  std::optional<std::string> sysctl_old_;
};

struct ProgramRunTime {
  uint32_t id = 0;
  std::string name;  // the kernel's copy: at most 15 characters
  uint64_t run_time_ns = 0;
  uint64_t run_cnt = 0;
};

// nullopt when no program has that id (any more).
std::optional<ProgramRunTime> read_run_time(uint32_t prog_id);
// The id of a loaded program, 0 when the fd is not one.
uint32_t program_id(int prog_fd);

// Ids of the BPF programs a process holds open, from /proc/<pid>/fdinfo.
std::vector<uint32_t> programs_held_by(pid_t pid);

}  // namespace netwatch::bench
