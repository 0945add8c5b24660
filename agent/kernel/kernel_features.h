// What the running kernel offers netwatch, and the checks that turn a missing feature into
// one clear line. `netwatch doctor` prints these; the loaders call the require_* functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace netwatch::kernel {

struct Privileges {
  bool root = false;
  bool cap_sys_admin = false;
  bool cap_bpf = false;
  bool cap_perfmon = false;

  // Loading tracing programs needs CAP_BPF + CAP_PERFMON (v5.8+) or CAP_SYS_ADMIN.
  bool can_load_tracing() const { return cap_sys_admin || (cap_bpf && cap_perfmon); }
};

Privileges read_privileges();
bool has_vmlinux_btf();
bool has_ringbuf();
// The BPF memory allocator (v6.1), which makes run-time allocated hash maps safe in tracing
// programs; without it netwatch preallocates its hash.
bool has_bpf_mem_alloc();
// True when vmlinux BTF has btf_trace_<name>, i.e. tp_btf can attach to it.
bool has_btf_tracepoint(const std::string& name);
// The mounted tracefs directory, if any (/sys/kernel/tracing or the debugfs one).
std::optional<std::string> tracefs_dir();
// Mounts tracefs at /sys/kernel/tracing when no tracefs is mounted. Returns an error message.
std::optional<std::string> ensure_tracefs();
bool has_tracefs_event(const std::string& category, const std::string& name);
// tcp_probe's record carries skaddr (6.12 has it, 6.1 not); the tracepoint variant needs it
// for RTT samples. Read from BTF: no tracefs needed.
bool tcp_probe_has_skaddr();
bool bpffs_mounted();
// Mounts bpffs at /sys/fs/bpf when nothing is mounted there. Returns an error message.
std::optional<std::string> ensure_bpffs();
// True when path (or its nearest existing ancestor) is on a bpffs mount.
bool on_bpffs(const std::string& path);
std::optional<std::string> cgroup2_mount();
bool bpf_stats_enabled();

// Throw FatalError(exit 2) with what to do when netwatch cannot load programs here.
void require_load_privileges();
void require_btf();

// The tracepoints netwatch attaches to, as "category/name".
const std::vector<std::string>& netwatch_tracepoints();

}  // namespace netwatch::kernel
