// The loaded kernel side: one owner for the skeleton, its programs and their links.
// Staged like falcosecurity/libs: open -> configure (rodata, map sizes, autoload) -> load ->
// attach, each stage with its own error. With the variant left to auto, tp_btf is tried first
// and the classic tracepoints are the fallback.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event/event.h"
#include "event/kernel_stats.h"
#include "kernel/pin_dir.h"

struct netwatch_bpf;
struct bpf_link;

namespace netwatch::kernel {

enum class AttachVariant { tp_btf, tracepoint };
enum class Transport { ringbuf, perfbuf };

std::string_view variant_name(AttachVariant v);
std::string_view transport_name(Transport t);

struct ProbeOptions {
  std::optional<AttachVariant> variant;      // nullopt: tp_btf, else tracepoint
  std::optional<Transport> transport;        // nullopt: ringbuf where the kernel has it
  uint64_t rtt_interval_ns = 1'000'000'000;  // at most one RTT sample per socket per interval
  // The retransmit reports' interval (on_retransmit() in bpf/netwatch.bpf.c); 0: one per retransmit.
  uint64_t retrans_interval_ns = 1'000'000'000;
  uint32_t ring_bytes = 4u << 20;            // ring buffer size (power of two, >= page size)
  uint32_t sock_table_entries = 65536;  // without sk_storage: every socket's state, in a hash
  // tp_btf: state of sockets seen connect or accept, in the same hash until their second RTT
  // sample (cheaper to make than sk_storage); beyond the cap it goes to sk_storage directly.
  // Short connections leave within a second, so this holds churn plus idle connections.
  uint32_t young_table_entries = 16384;
  // Where maps and links are pinned so that they outlive this process (see PinDir); empty:
  // nothing is pinned and everything goes when the process exits.
  std::string pin_dir;
};

class ProbeSet {
 public:
  // Loads and attaches everything; throws FatalError with what to do when it cannot. With a
  // pin directory, programs and maps pinned there by the same build and configuration are
  // adopted as they are (they kept running); anything else pinned there is replaced.
  static std::unique_ptr<ProbeSet> start(const ProbeOptions& options);
  ~ProbeSet();
  ProbeSet(const ProbeSet&) = delete;
  ProbeSet& operator=(const ProbeSet&) = delete;

  AttachVariant variant() const { return variant_; }
  // tp_btf keeps long-lived sockets' state in sk_storage where the kernel's tracing programs
  // may use it (v5.12); elsewhere, and in the tracepoint variant, every socket is in a hash.
  bool socket_storage() const { return socket_storage_; }
  std::string_view state_placement() const { return socket_storage_ ? "sk_storage" : "hash"; }
  // Why tp_btf runs without sk_storage: the kernel's answer to the attempt with it.
  const std::string& no_storage_reason() const { return no_storage_reason_; }
  Transport transport() const { return transport_; }
  int events_fd() const;  // the ring buffer, or the perf event array
  event::KernelCounters counters() const;
  std::vector<event::ProgramStats> program_stats() const;  // the attached programs
  // True when the programs were found running in the pin directory and adopted.
  bool adopted() const { return adopted_; }
  PinDir* pins() const { return pins_.get(); }  // nullptr when nothing is pinned

 private:
  struct Attached {
    std::string name;
    bpf_link* link = nullptr;
    int prog_fd = -1;  // owned: also for adopted programs, which the object did not load
  };

  ProbeSet(netwatch_bpf* skel, AttachVariant variant, Transport transport);
  static std::unique_ptr<ProbeSet> try_start(const ProbeOptions& options, AttachVariant variant, bool sk_storage,
                                             Transport transport, std::unique_ptr<PinDir>& pins);
  void attach();
  void adopt(const std::vector<std::string>& pinned_links);

  netwatch_bpf* skel_;
  std::vector<Attached> attached_;
  AttachVariant variant_;
  Transport transport_;
  std::unique_ptr<PinDir> pins_;
  bool adopted_ = false;
  bool socket_storage_ = false;
  std::string no_storage_reason_;
};

}  // namespace netwatch::kernel
