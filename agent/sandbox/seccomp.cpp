#include "sandbox/seccomp.h"

#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "kernel/kernel_features.h"

namespace netwatch::sandbox {
namespace {

// A 1-entry array map: what every netwatch start creates first. -errno on failure.
int try_bpf() {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
  if (fd < 0) return -errno;
  close(static_cast<int>(fd));
  return 0;
}

// A software dummy event on this process: the kernel refuses it to no one holding CAP_PERFMON.
int try_perf_event_open() {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_DUMMY;
  attr.disabled = 1;
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
  if (fd < 0) return -errno;
  close(static_cast<int>(fd));
  return 0;
}

// Seccomp filters answer with an errno of the profile's choosing: EPERM in the container
// profiles' rules for bpf and perf_event_open, ENOSYS as their default action.
bool denied(int rc) {
  return rc == -EPERM || rc == -EACCES || rc == -ENOSYS;
}

}  // namespace

bool seccomp_filter_active() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Seccomp:", 0) == 0) return line.find('2') != std::string::npos;
  return false;
}

SeccompDenial seccomp_denial() {
  SeccompDenial d;
  if (!seccomp_filter_active()) return d;
  kernel::Privileges p = kernel::read_privileges();
  d.bpf = (p.cap_bpf || p.cap_sys_admin) && denied(try_bpf());
  d.perf_event_open = (p.cap_perfmon || p.cap_sys_admin) && denied(try_perf_event_open());
  return d;
}

std::string SeccompDenial::message() const {
  if (!any()) return "";
  std::string calls = bpf && perf_event_open ? "bpf() and perf_event_open()" : bpf ? "bpf()" : "perf_event_open()";
  return "a seccomp filter denies " + calls +
         " although the capability is held (the container-tools default profile of podman and CRI-O "
         "allows them only with CAP_SYS_ADMIN): run with the seccomp profile shipped in the chart "
         "(helm/netwatch/files/seccomp-netwatch.json, see its README) or Unconfined";
}

}  // namespace netwatch::sandbox
