// Recognising a seccomp filter that denies what the agent needs, so that the failure names its
// cause instead of surfacing as a map or program that "failed: Operation not permitted".
#pragma once

#include <string>

namespace netwatch {

// True when a seccomp filter is in force on this process (/proc/self/status "Seccomp: 2").
bool seccomp_filter_active();

// One line when a seccomp filter denies bpf() or perf_event_open() although the process holds the
// capability that the kernel itself would accept (CAP_BPF / CAP_PERFMON, or CAP_SYS_ADMIN):
// the container-tools default profile (podman, CRI-O) allows both only with CAP_SYS_ADMIN.
// "" when nothing is denied, no filter is active or the capability is missing (the kernel's
// EPERM then has another cause, which require_load_privileges reports).
std::string seccomp_denial();

}  // namespace netwatch
