#include "kernel/probe_set.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernel/kernel_features.h"
#include "kernel/libbpf_log.h"
#include "util/log.h"
#include "netwatch.skel.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

namespace netwatch::kernel {
namespace {

std::string errstr(int err) {
  return std::strerror(err < 0 ? -err : err);
}

bool belongs_to(const bpf_program* prog, AttachVariant variant) {
  std::string_view name = bpf_program__name(prog);
  return name.rfind(variant == AttachVariant::tp_btf ? "btf_" : "tp_", 0) == 0;
}

// FNV-1a: what identifies pinned probes, so a restarted agent knows whether they are its own.
uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

// The object's bytes, its configured read-only data and map sizes, and the variant and transport.
uint64_t fingerprint(const netwatch_bpf* skel, AttachVariant variant, Transport transport) {
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t size = 0;
  const void* elf = netwatch_bpf__elf_bytes(&size);
  h = fnv1a(h, elf, size);
  const void* rodata = bpf_map__initial_value(skel->maps.rodata, &size);
  h = fnv1a(h, rodata, size);
  bpf_map* map;
  bpf_object__for_each_map(map, skel->obj) {
    uint32_t entries = bpf_map__max_entries(map);
    h = fnv1a(h, &entries, sizeof(entries));
  }
  uint8_t how[2] = {static_cast<uint8_t>(variant), static_cast<uint8_t>(transport)};
  return fnv1a(h, how, sizeof(how));
}

// Where per-socket state lives: sk_storage for sockets that live on (the tp_btf programs then call
// the socket helpers) and the hash for young ones, or every socket in the hash.
void configure_state(netwatch_bpf* skel, const ProbeOptions& options, bool sk_storage) {
  skel->rodata->tracing_sk_helpers = sk_storage;
  bpf_map__set_max_entries(skel->maps.sock_table,
                           sk_storage ? options.young_table_entries : options.sock_table_entries);
}

}  // namespace

std::string_view variant_name(AttachVariant v) {
  return v == AttachVariant::tp_btf ? "tp_btf" : "tracepoint";
}
std::string_view transport_name(Transport t) {
  return t == Transport::ringbuf ? "ringbuf" : "perfbuf";
}

ProbeSet::ProbeSet(netwatch_bpf* skel, AttachVariant variant, Transport transport)
    : skel_(skel), variant_(variant), transport_(transport) {}

ProbeSet::~ProbeSet() {
  // A pinned link keeps its program attached when its descriptor closes; any other detaches.
  for (Attached& a : attached_) {
    bpf_link__destroy(a.link);
    if (a.prog_fd >= 0) close(a.prog_fd);
  }
  netwatch_bpf__destroy(skel_);
}

// tp_btf with per-socket state in sk_storage first; where the kernel's tracing programs cannot
// use it (before v5.11/5.12), tp_btf with every socket in the hash; then, unless the variant was
// forced, the classic tracepoints. Each failure is logged with the kernel's reason.
std::unique_ptr<ProbeSet> ProbeSet::start(const ProbeOptions& options) {
  require_load_privileges();
  require_btf();
  route_libbpf_logs();

  Transport transport = options.transport.value_or(has_ringbuf() ? Transport::ringbuf : Transport::perfbuf);
  if (transport == Transport::ringbuf && !has_ringbuf())
    throw util::FatalError("this kernel has no BPF ring buffer (v5.8+); use --transport=perfbuf or auto",
                           util::kExitUsage);
  std::unique_ptr<PinDir> pins = options.pin_dir.empty() ? nullptr : std::make_unique<PinDir>(options.pin_dir);

  if (options.variant == AttachVariant::tracepoint)
    return try_start(options, AttachVariant::tracepoint, false, transport, pins);
  std::string btf_error;
  for (bool sk_storage : {true, false}) {
    try {
      std::unique_ptr<ProbeSet> set = try_start(options, AttachVariant::tp_btf, sk_storage, transport, pins);
      if (!set->socket_storage_ && !btf_error.empty()) set->no_storage_reason_ = btf_error;
      return set;
    } catch (const util::FatalError& e) {
      if (sk_storage) {
        util::log_info(std::string("tp_btf with socket storage does not load here (") + e.what() +
                       "); trying tp_btf with per-socket state in a hash");
        btf_error = e.what();
      } else if (options.variant) {
        throw util::FatalError(btf_error + "; without socket storage: " + e.what(), util::kExitUsage);
      } else {
        util::log_warn(std::string("tp_btf probes unavailable (") + btf_error +
                       "; without socket storage: " + e.what() + "); falling back to tracepoints");
      }
    }
  }
  return try_start(options, AttachVariant::tracepoint, false, transport, pins);
}

std::unique_ptr<ProbeSet> ProbeSet::try_start(const ProbeOptions& options, AttachVariant variant, bool sk_storage,
                                              Transport transport, std::unique_ptr<PinDir>& pins) {
  if (variant == AttachVariant::tracepoint) {
    if (auto err = ensure_tracefs()) throw util::FatalError(*err, util::kExitUsage);
  }

  // open
  netwatch_bpf* skel = netwatch_bpf__open();
  if (!skel) throw util::FatalError("opening the BPF object failed: " + errstr(errno));
  std::unique_ptr<ProbeSet> set(new ProbeSet(skel, variant, transport));

  // configure
  skel->rodata->rtt_interval_ns = options.rtt_interval_ns;
  skel->rodata->retrans_interval_ns = options.retrans_interval_ns;
  skel->rodata->use_perfbuf = transport == Transport::perfbuf;
  // Wake the reader early only when a quarter of the ring is waiting; the timed drain does the rest.
  skel->rodata->wakeup_bytes = options.ring_bytes / 4;
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  bpf_map__set_max_entries(skel->maps.events, transport == Transport::ringbuf ? options.ring_bytes : page);
  if (transport == Transport::ringbuf) bpf_map__set_max_entries(skel->maps.events_perf, 1);
  configure_state(skel, options, sk_storage);
  // Run-time allocation from a tracepoint is safe only with the BPF memory allocator.
  if (!has_bpf_mem_alloc()) {
    bpf_map__set_map_flags(skel->maps.sock_table, bpf_map__map_flags(skel->maps.sock_table) & ~BPF_F_NO_PREALLOC);
    bpf_map__set_map_flags(skel->maps.listeners, bpf_map__map_flags(skel->maps.listeners) & ~BPF_F_NO_PREALLOC);
  }
  size_t programs = 0;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    bpf_program__set_autoload(prog, belongs_to(prog, variant));
    programs += belongs_to(prog, variant);
  }
  // Two agents with the same build, flags and kernel have the same fingerprint.
  PinMeta meta{fingerprint(skel, variant, transport), static_cast<uint32_t>(variant), static_cast<uint32_t>(transport)};
  // Pinned tp_btf probes of the other state placement are this kernel's choice from an earlier
  // start: adopted as they are rather than replaced, which would lose what waits in their ring.
  std::optional<PinMeta> found = pins ? pins->read_meta() : std::nullopt;
  const uint64_t pinned_fingerprint = found ? found->fingerprint : 0;
  if (variant == AttachVariant::tp_btf && found && pinned_fingerprint != meta.fingerprint) {
    configure_state(skel, options, !sk_storage);
    if (fingerprint(skel, variant, transport) == pinned_fingerprint) {
      sk_storage = !sk_storage;
      meta.fingerprint = pinned_fingerprint;
    } else {
      configure_state(skel, options, sk_storage);
    }
  }
  set->socket_storage_ = sk_storage;

  std::vector<std::string> pinned_links;
  bool adopt = false;
  if (pins) {
    pinned_links = pins->pinned_links();
    adopt = found && pinned_fingerprint == meta.fingerprint && pinned_links.size() == programs;
    if (!adopt) {
      if (found || !pinned_links.empty())
        util::log_warn("replacing the probes pinned in " + pins->path() + ": " +
                       (found ? "another netwatch build or configuration pinned them"
                              : "the set is incomplete (a start was interrupted)"));
      pins->clear_probes();
    }
    bpf_map* map;
    bpf_object__for_each_map(map, skel->obj) {
      if (!bpf_map__is_internal(map)) bpf_map__set_pin_path(map, pins->map_path(bpf_map__name(map)).c_str());
    }
    // Adopting loads the maps only (libbpf reuses the pinned ones): the programs are running.
    if (adopt) bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, false);
  }

  set->pins_ = std::move(pins);
  try {
    // load
    LibbpfDiagnosis diagnosis;
    if (int err = netwatch_bpf__load(skel)) {
      std::string why = diagnosis.reason();
      throw util::FatalError("loading the " + std::string(variant_name(variant)) + " programs failed: " + errstr(err) +
                                 (why.empty() ? "" : ": " + why) + " (--log-level=debug shows the verifier log)",
                             util::kExitUsage);
    }
    if (adopt) {
      set->adopt(pinned_links);
    } else {
      set->attach();
      if (set->pins_) set->pins_->write_meta(meta);
    }
  } catch (...) {
    // Nothing half-attached stays behind: unpinned links detach with the set, pinned ones here.
    pins = std::move(set->pins_);  // back to the caller, for the fallback variant
    if (pins) pins->clear_probes();
    throw;
  }
  set->adopted_ = adopt;
  util::log_info(std::string(adopt ? "probes adopted from " + set->pins_->path() + ": " : "probes attached: ") +
                 "variant=" + std::string(variant_name(variant)) + " transport=" +
                 std::string(transport_name(transport)) + " state=" + std::string(set->state_placement()));
  return set;
}

// Inet_sock_set_state first (the object's order), so state is cleaned up at close before
// anything creates it.
void ProbeSet::attach() {
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (!belongs_to(prog, variant_)) continue;
    std::string name = bpf_program__name(prog);
    bpf_link* link = bpf_program__attach(prog);
    if (!link)
      throw util::FatalError("attaching " + name + " (" + bpf_program__section_name(prog) +
                             ") failed: " + errstr(errno));
    attached_.push_back({name, link, dup(bpf_program__fd(prog))});
    if (pins_ && bpf_link__pin(link, pins_->link_path(name).c_str()) != 0)
      throw util::FatalError("pinning " + pins_->link_path(name) + " failed: " + errstr(errno));
  }
}

void ProbeSet::adopt(const std::vector<std::string>& pinned_links) {
  for (const std::string& name : pinned_links) {
    bpf_link* link = bpf_link__open(pins_->link_path(name).c_str());
    if (!link) throw util::FatalError("opening the pinned link " + name + " failed: " + errstr(errno));
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    int prog_fd = -1;
    if (bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len) == 0) prog_fd = bpf_prog_get_fd_by_id(info.prog_id);
    attached_.push_back({name, link, prog_fd});
  }
}

int ProbeSet::events_fd() const {
  return bpf_map__fd(transport_ == Transport::ringbuf ? skel_->maps.events : skel_->maps.events_perf);
}

event::KernelCounters ProbeSet::counters() const {
  event::KernelCounters total;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return total;
  std::vector<nw_counters> per_cpu(ncpu);
  uint32_t key = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.counters), &key, per_cpu.data()) != 0) return total;
  for (const nw_counters& c : per_cpu) {
    for (int t = 0; t < event::kEventTypeCount; ++t) {
      total.emitted[t] += c.emitted[t];
      total.lost[t] += c.lost[t];
    }
    total.state_full += c.state_full;
    total.state_spilled += c.state_spilled;
    total.listeners_full += c.listeners_full;
  }
  return total;
}

std::vector<event::ProgramStats> ProbeSet::program_stats() const {
  std::vector<event::ProgramStats> out;
  for (const Attached& a : attached_) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    event::ProgramStats s{a.name};
    if (a.prog_fd >= 0 && bpf_obj_get_info_by_fd(a.prog_fd, &info, &len) == 0) {
      s.id = info.id;
      s.run_time_ns = info.run_time_ns;
      s.run_cnt = info.run_cnt;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace netwatch::kernel
