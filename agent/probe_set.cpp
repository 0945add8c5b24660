#include "agent/probe_set.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/kernel_features.h"
#include "agent/log.h"
#include "netwatch.skel.h"

extern "C" {
#include <linux/types.h>
#include "netwatch.h"
}

namespace netwatch {
namespace {

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

bool belongs_to(const bpf_program* prog, AttachVariant variant) {
  std::string_view name = bpf_program__name(prog);
  return name.rfind(variant == AttachVariant::tp_btf ? "btf_" : "tp_", 0) == 0;
}

}  // namespace

std::string_view variant_name(AttachVariant v) { return v == AttachVariant::tp_btf ? "tp_btf" : "tracepoint"; }
std::string_view transport_name(Transport t) { return t == Transport::ringbuf ? "ringbuf" : "perfbuf"; }

uint64_t KernelCounters::total_lost() const {
  uint64_t sum = 0;
  for (uint64_t v : lost) sum += v;
  return sum;
}

ProbeSet::ProbeSet(netwatch_bpf* skel, AttachVariant variant, Transport transport)
    : skel_(skel), variant_(variant), transport_(transport) {}

ProbeSet::~ProbeSet() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  netwatch_bpf__destroy(skel_);
}

std::unique_ptr<ProbeSet> ProbeSet::start(const ProbeOptions& options) {
  require_load_privileges();
  require_btf();
  route_libbpf_logs();

  Transport transport = options.transport.value_or(has_ringbuf() ? Transport::ringbuf : Transport::perfbuf);
  if (transport == Transport::ringbuf && !has_ringbuf())
    throw FatalError("this kernel has no BPF ring buffer (v5.8+); use --transport=perfbuf or auto", kExitUsage);

  if (options.variant) return try_start(options, *options.variant, transport);
  try {
    return try_start(options, AttachVariant::tp_btf, transport);
  } catch (const FatalError& e) {
    log_warn(std::string("tp_btf probes unavailable (") + e.what() + "); falling back to tracepoints");
    return try_start(options, AttachVariant::tracepoint, transport);
  }
}

std::unique_ptr<ProbeSet> ProbeSet::try_start(const ProbeOptions& options, AttachVariant variant,
                                              Transport transport) {
  if (variant == AttachVariant::tracepoint) {
    if (auto err = ensure_tracefs()) throw FatalError(*err);
  }

  // open
  netwatch_bpf* skel = netwatch_bpf__open();
  if (!skel) throw FatalError("opening the BPF object failed: " + errstr(errno));
  std::unique_ptr<ProbeSet> set(new ProbeSet(skel, variant, transport));

  // configure
  skel->rodata->rtt_interval_ns = options.rtt_interval_ns;
  skel->rodata->retrans_interval_ns = options.retrans_interval_ns;
  skel->rodata->use_perfbuf = transport == Transport::perfbuf;
  uint64_t secret = 0;
  if (getrandom(&secret, sizeof(secret), 0) != sizeof(secret)) throw FatalError("getrandom failed");
  skel->rodata->id_secret = secret;
  // Wake the reader early only when a quarter of the ring is waiting; the timed drain does the rest.
  skel->rodata->wakeup_bytes = options.ring_bytes / 4;
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  bpf_map__set_max_entries(skel->maps.events, transport == Transport::ringbuf ? options.ring_bytes : page);
  if (transport == Transport::ringbuf) bpf_map__set_max_entries(skel->maps.events_perf, 1);
  bpf_map__set_max_entries(skel->maps.sock_table,
                           variant == AttachVariant::tracepoint ? options.sock_table_entries : 1);
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, belongs_to(prog, variant));

  // load
  if (int err = netwatch_bpf__load(skel))
    throw FatalError("loading the " + std::string(variant_name(variant)) +
                     " programs failed: " + errstr(err) + " (run with --log-level=debug for the verifier log)");

  // attach: inet_sock_set_state first, so state is cleaned up at close before anything creates it
  bpf_object__for_each_program(prog, skel->obj) {
    if (!belongs_to(prog, variant)) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link)
      throw FatalError("attaching " + std::string(bpf_program__name(prog)) + " (" +
                       bpf_program__section_name(prog) + ") failed: " + errstr(errno));
    set->links_.push_back(link);
  }
  log_info("probes attached: variant=" + std::string(variant_name(variant)) +
           " transport=" + std::string(transport_name(transport)));
  return set;
}

int ProbeSet::events_fd() const {
  return bpf_map__fd(transport_ == Transport::ringbuf ? skel_->maps.events : skel_->maps.events_perf);
}

KernelCounters ProbeSet::counters() const {
  KernelCounters total;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return total;
  std::vector<nw_counters> per_cpu(ncpu);
  uint32_t key = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.counters), &key, per_cpu.data()) != 0) return total;
  for (const nw_counters& c : per_cpu) {
    for (int t = 0; t < kEventTypeCount; ++t) {
      total.emitted[t] += c.emitted[t];
      total.lost[t] += c.lost[t];
    }
    total.state_full += c.state_full;
  }
  return total;
}

std::vector<ProgramStats> ProbeSet::program_stats() const {
  std::vector<ProgramStats> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (!belongs_to(prog, variant_)) continue;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    ProgramStats s{bpf_program__name(prog)};
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
      s.id = info.id;
      s.run_time_ns = info.run_time_ns;
      s.run_cnt = info.run_cnt;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace netwatch
