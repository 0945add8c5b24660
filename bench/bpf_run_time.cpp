#include "bench/bpf_run_time.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "util/log.h"

namespace netwatch::bench {
namespace {

constexpr const char* kStatsSysctl = "/proc/sys/kernel/bpf_stats_enabled";

std::optional<std::string> read_sysctl() {
  std::ifstream f(kStatsSysctl);
  std::string v;
  if (!(f >> v)) return std::nullopt;
  return v;
}

bool write_sysctl(const std::string& value) {
  std::ofstream f(kStatsSysctl);
  return static_cast<bool>(f << value << '\n') && static_cast<bool>(f.flush());
}

}  // namespace

RunTimeAccounting::RunTimeAccounting() {
  stats_fd_ = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (stats_fd_ >= 0) return;
  int err = errno;
  sysctl_old_ = read_sysctl();
  if (!sysctl_old_ || !write_sysctl("1"))
    throw util::FatalError(std::string("cannot turn on BPF run-time accounting: BPF_ENABLE_STATS failed (") +
                           std::strerror(err) + ") and " + kStatsSysctl + " is not writable; run as root");
}

RunTimeAccounting::~RunTimeAccounting() {
  if (stats_fd_ >= 0) close(stats_fd_);
  if (sysctl_old_ && !write_sysctl(*sysctl_old_))
    util::log_warn(std::string("could not restore ") + kStatsSysctl + " to " + *sysctl_old_);
}

std::optional<ProgramRunTime> read_run_time(uint32_t prog_id) {
  int fd = bpf_prog_get_fd_by_id(prog_id);
  if (fd < 0) return std::nullopt;
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  int err = bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  if (err != 0) return std::nullopt;
  return ProgramRunTime{info.id, info.name, info.run_time_ns, info.run_cnt};
}

uint32_t program_id(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 ? info.id : 0;
}

std::vector<uint32_t> programs_held_by(pid_t pid) {
  std::vector<uint32_t> ids;
  std::error_code ec;
  std::filesystem::path dir = "/proc/" + std::to_string(pid) + "/fdinfo";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream f(entry.path());
    std::string key;
    uint64_t value = 0;
    // A BPF program's fdinfo has "prog_type:", "prog_tag:", "prog_id:" ... (bpf_prog_show_fdinfo()).
    while (f >> key) {
      if (key == "prog_id:" && (f >> value)) {
        // bpftrace may hold one program through several fds.
        if (std::find(ids.begin(), ids.end(), value) == ids.end()) ids.push_back(static_cast<uint32_t>(value));
        break;
      }
      f.ignore(4096, '\n');
    }
  }
  return ids;
}

}  // namespace netwatch::bench
