// Recognising a seccomp filter that denies what the agent needs, so that the failure names its
// cause instead of surfacing as a map or program that "failed: Operation not permitted".
#pragma once

#include <string>

namespace netwatch::sandbox {

// True when a seccomp filter is in force on this process (/proc/self/status "Seccomp: 2").
bool seccomp_filter_active();

// What a seccomp filter denies although the process holds the capability the kernel itself would
// accept (CAP_BPF / CAP_PERFMON, or CAP_SYS_ADMIN): the container-tools default profile (podman,
// CRI-O) allows both calls only with CAP_SYS_ADMIN. Nothing is reported when no filter is active or
// the capability is missing (the kernel's EPERM then has another cause, which
// require_load_privileges reports).
struct SeccompDenial {
  bool bpf = false;              // nothing loads: fatal
  bool perf_event_open = false;  // tp_btf with the ring buffer still works; tracepoints and perf buffer do not
  bool any() const { return bpf || perf_event_open; }
  std::string message() const;  // one line naming the calls and what to do
};
SeccompDenial seccomp_denial();

}  // namespace netwatch::sandbox
