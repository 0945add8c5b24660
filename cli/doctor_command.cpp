// `netwatch doctor`: every kernel feature netwatch uses, what was found, and which probe
// variant and transport the agent would use. Exits non-zero, with the reason, when it cannot run.
#include <CLI/CLI.hpp>

#include <sys/utsname.h>

#include <cstdio>
#include <string>
#include <vector>

#include "kernel/kernel_features.h"
#include "util/log.h"
#include "kernel/probe_set.h"
#include "sandbox/seccomp.h"
#include "cli/command.h"

namespace netwatch::cli {
namespace {

enum class Status { ok, warn, fail };

struct Check {
  std::string name;
  Status status;
  std::string found;
};

const char* status_name(Status s) { return s == Status::ok ? "ok" : s == Status::warn ? "warn" : "FAIL"; }

// Loads and attaches one variant for real, then releases it: the only honest test.
Check try_variant(kernel::AttachVariant variant, kernel::Transport transport) {
  std::string name =
      "load " + std::string(kernel::variant_name(variant)) + " + " + std::string(kernel::transport_name(transport));
  try {
    kernel::ProbeOptions options;
    options.variant = variant;
    options.transport = transport;
    auto set = kernel::ProbeSet::start(options);
    std::string found = "loaded and attached; per-socket state in " + std::string(set->state_placement());
    if (!set->no_storage_reason().empty()) found += " (with sk_storage: " + set->no_storage_reason() + ")";
    return {name, Status::ok, found};
  } catch (const util::FatalError& e) {
    return {name, Status::fail, e.what()};
  }
}

int run_doctor() {
  std::vector<Check> checks;
  utsname uts{};
  uname(&uts);
  checks.push_back({"kernel", Status::ok, std::string(uts.release) + " " + uts.machine});

  kernel::Privileges p = kernel::read_privileges();
  std::string caps = std::string(p.root ? "root" : "uid " + std::to_string(geteuid())) +
                     (p.cap_bpf ? " CAP_BPF" : "") + (p.cap_perfmon ? " CAP_PERFMON" : "") +
                     (p.cap_sys_admin ? " CAP_SYS_ADMIN" : "");
  checks.push_back({"privileges", p.can_load_tracing() ? Status::ok : Status::fail,
                    p.can_load_tracing() ? caps : caps + ": needs CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN"});
  sandbox::SeccompDenial seccomp =
      sandbox::seccomp_denial();  // a filter's EPERM would otherwise pass for a missing feature below
  checks.push_back({"seccomp",
                    seccomp.bpf     ? Status::fail
                    : seccomp.any() ? Status::warn
                                    : Status::ok,
                    seccomp.any()                      ? seccomp.message()
                    : sandbox::seccomp_filter_active() ? "a filter is active; it allows bpf() and perf_event_open()"
                                                       : "no filter"});

  bool btf = kernel::has_vmlinux_btf();
  checks.push_back({"BTF", btf ? Status::ok : Status::fail,
                    btf ? "/sys/kernel/btf/vmlinux" : "missing: kernel needs CONFIG_DEBUG_INFO_BTF=y"});
  bool ringbuf = p.can_load_tracing() && kernel::has_ringbuf();
  checks.push_back({"ring buffer", ringbuf ? Status::ok : Status::warn,
                    ringbuf ? "BPF_MAP_TYPE_RINGBUF" : "unavailable (v5.8+): perf buffer fallback"});

  for (const std::string& tp : kernel::netwatch_tracepoints()) {
    std::string event = tp.substr(tp.find('/') + 1);
    bool ok = btf && kernel::has_btf_tracepoint(event);
    checks.push_back({"tp_btf " + event, ok ? Status::ok : Status::warn, ok ? "btf_trace_" + event : "not in BTF"});
  }

  auto tracefs = kernel::tracefs_dir();
  checks.push_back({"tracefs", tracefs ? Status::ok : Status::warn,
                    tracefs ? *tracefs
                            : "not mounted; needed only by the tracepoint fallback, which mounts it at "
                              "/sys/kernel/tracing"});
  if (tracefs) {
    for (const std::string& tp : kernel::netwatch_tracepoints()) {
      std::string cat = tp.substr(0, tp.find('/')), event = tp.substr(tp.find('/') + 1);
      bool ok = kernel::has_tracefs_event(cat, event);
      checks.push_back({"tracepoint " + tp, ok ? Status::ok : Status::warn, ok ? "present" : "missing"});
    }
  }
  bool skaddr = btf && kernel::tcp_probe_has_skaddr();
  checks.push_back({"tcp_probe skaddr", skaddr ? Status::ok : Status::warn,
                    skaddr ? "present" : "missing: the tracepoint variant gets no RTT samples"});

  bool bpffs = kernel::bpffs_mounted();
  checks.push_back({"bpffs", bpffs ? Status::ok : Status::warn,
                    bpffs ? "/sys/fs/bpf" : "not mounted: mount -t bpf bpf /sys/fs/bpf (needed to pin state)"});
  auto cgroup2 = kernel::cgroup2_mount();
  checks.push_back({"cgroup2", cgroup2 ? Status::ok : Status::warn,
                    cgroup2 ? *cgroup2 : "not mounted: pod labels unavailable"});
  checks.push_back(
      {"bpf_stats", Status::ok, kernel::bpf_stats_enabled() ? "on (run_time_ns counted)" : "off (optional)"});

  std::string would_use;
  if (p.can_load_tracing() && btf) {
    kernel::Transport transport = ringbuf ? kernel::Transport::ringbuf : kernel::Transport::perfbuf;
    util::set_log_level(util::LogLevel::error);  // a failing variant's libbpf chatter belongs to the check's line
    Check btf_variant = try_variant(kernel::AttachVariant::tp_btf, transport);
    Check tp_variant = try_variant(kernel::AttachVariant::tracepoint, transport);
    if (btf_variant.status == Status::fail && tp_variant.status == Status::ok) btf_variant.status = Status::warn;
    if (tp_variant.status == Status::fail && btf_variant.status == Status::ok) tp_variant.status = Status::warn;
    checks.push_back(btf_variant);
    checks.push_back(tp_variant);
    if (btf_variant.status == Status::ok)
      would_use = "tp_btf + " + std::string(kernel::transport_name(transport));
    else if (tp_variant.status == Status::ok)
      would_use = "tracepoint + " + std::string(kernel::transport_name(transport));
  }

  for (const Check& c : checks) std::printf("%-36s %-5s %s\n", c.name.c_str(), status_name(c.status), c.found.c_str());
  if (!would_use.empty()) {
    std::printf("\nnetwatch can run here: it would use %s\n", would_use.c_str());
    return 0;
  }
  for (const Check& c : checks)
    if (c.status == Status::fail) std::fprintf(stderr, "netwatch: cannot run here: %s: %s\n", c.name.c_str(), c.found.c_str());
  return 1;
}

}  // namespace

Command add_doctor_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("doctor", "Check the kernel features netwatch needs");
  return {app, [] { return run_doctor(); }};
}

}  // namespace netwatch::cli
