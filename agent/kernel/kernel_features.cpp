#include "kernel/kernel_features.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>

#include "util/log.h"

namespace netwatch::kernel {
namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;
constexpr long kTracefsMagic = 0x74726163;
constexpr long kBpffsMagic = 0xcafe4a11;
constexpr long kDebugfsMagic = 0x64626720;

bool is_fs(const char* path, long magic) {
  struct statfs st {};
  return statfs(path, &st) == 0 && static_cast<long>(st.f_type) == magic;
}

}  // namespace

Privileges read_privileges() {
  Privileges p;
  p.root = geteuid() == 0;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
    p.cap_sys_admin = caps & (1ULL << kCapSysAdmin);
    p.cap_perfmon = caps & (1ULL << kCapPerfmon);
    p.cap_bpf = caps & (1ULL << kCapBpf);
  }
  return p;
}

bool has_vmlinux_btf() {
  return access("/sys/kernel/btf/vmlinux", R_OK) == 0;
}

bool has_ringbuf() {
  return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
}

namespace {
const btf* vmlinux_btf() {
  static btf* vmlinux = btf__load_vmlinux_btf();
  return vmlinux;
}
}  // namespace

bool has_btf_tracepoint(const std::string& name) {
  const btf* vmlinux = vmlinux_btf();
  return vmlinux && btf__find_by_name_kind(vmlinux, ("btf_trace_" + name).c_str(), BTF_KIND_TYPEDEF) > 0;
}

bool has_bpf_mem_alloc() {
  const btf* vmlinux = vmlinux_btf();
  return vmlinux && btf__find_by_name_kind(vmlinux, "bpf_mem_alloc", BTF_KIND_STRUCT) > 0;
}

std::optional<std::string> tracefs_dir() {
  if (is_fs("/sys/kernel/tracing", kTracefsMagic)) return "/sys/kernel/tracing";
  // Older layouts expose tracefs under debugfs; libbpf looks there first.
  if (is_fs("/sys/kernel/debug/tracing", kTracefsMagic)) return "/sys/kernel/debug/tracing";
  return std::nullopt;
}

std::optional<std::string> ensure_tracefs() {
  if (tracefs_dir()) return std::nullopt;
  // libbpf prefers /sys/kernel/debug/tracing whenever that path exists; an empty directory
  // left by an unmounted debugfs would send it to the wrong place.
  if (access("/sys/kernel/debug/tracing", F_OK) == 0 && !is_fs("/sys/kernel/debug", kDebugfsMagic))
    return "/sys/kernel/debug/tracing exists but is no tracefs; mount tracefs there or remove it";
  if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0)
    return std::string("tracefs is not mounted and mounting it at /sys/kernel/tracing failed: ") +
           std::strerror(errno) + "; run: mount -t tracefs tracefs /sys/kernel/tracing";
  util::log_info("mounted tracefs at /sys/kernel/tracing");
  return std::nullopt;
}

bool has_tracefs_event(const std::string& category, const std::string& name) {
  auto dir = tracefs_dir();
  return dir && access((*dir + "/events/" + category + "/" + name + "/id").c_str(), R_OK) == 0;
}

bool tcp_probe_has_skaddr() {
  // The record's type in BTF: what the program's CO-RE relocation is resolved against.
  const btf* vmlinux = vmlinux_btf();
  int id = vmlinux ? btf__find_by_name_kind(vmlinux, "trace_event_raw_tcp_probe", BTF_KIND_STRUCT) : -1;
  if (id <= 0) return false;
  const btf_type* t = btf__type_by_id(vmlinux, id);
  const btf_member* m = btf_members(t);
  for (int i = 0; i < btf_vlen(t); ++i, ++m)
    if (std::string_view(btf__name_by_offset(vmlinux, m->name_off)) == "skaddr") return true;
  return false;
}

bool bpffs_mounted() {
  return is_fs("/sys/fs/bpf", kBpffsMagic);
}

std::optional<std::string> ensure_bpffs() {
  if (bpffs_mounted()) return std::nullopt;
  if (mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0)
    return std::string("bpffs is not mounted and mounting it at /sys/fs/bpf failed: ") + std::strerror(errno) +
           "; run: mount -t bpf bpf /sys/fs/bpf (in a container: mount the host's /sys/fs/bpf), or --pin-dir ''";
  util::log_info("mounted bpffs at /sys/fs/bpf");
  return std::nullopt;
}

bool on_bpffs(const std::string& path) {
  std::string p = path;
  while (access(p.c_str(), F_OK) != 0) {
    size_t slash = p.find_last_of('/');
    if (slash == std::string::npos || slash == 0) return false;  // up to / nothing exists: no bpffs
    p.resize(slash);
  }
  return is_fs(p.c_str(), kBpffsMagic);
}

std::optional<std::string> cgroup2_mount() {
  std::ifstream mounts("/proc/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest))
    if (type == "cgroup2") return dir;
  return std::nullopt;
}

bool bpf_stats_enabled() {
  std::ifstream f("/proc/sys/kernel/bpf_stats_enabled");
  int v = 0;
  return (f >> v) && v != 0;
}

void require_load_privileges() {
  Privileges p = read_privileges();
  if (p.can_load_tracing()) return;
  throw util::FatalError(p.root ? "missing CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) needed to load BPF programs; "
                                  "grant them to the process or container"
                                : "must run as root or with CAP_BPF and CAP_PERFMON to load BPF programs; "
                                  "try: sudo netwatch ...",
                         util::kExitUsage);
}

void require_btf() {
  if (has_vmlinux_btf()) return;
  throw util::FatalError(
      "kernel has no BTF (/sys/kernel/btf/vmlinux missing); netwatch needs a kernel built "
      "with CONFIG_DEBUG_INFO_BTF=y (most distributions since 2020 ship one)",
      util::kExitUsage);
}

const std::vector<std::string>& netwatch_tracepoints() {
  static const std::vector<std::string> names = {"sock/inet_sock_set_state", "tcp/tcp_retransmit_skb",
                                                 "tcp/tcp_retransmit_synack", "tcp/tcp_probe"};
  return names;
}

}  // namespace netwatch::kernel
