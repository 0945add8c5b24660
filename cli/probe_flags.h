// The flags every command that loads the probes shares (trace, agent, top).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "transport/event_reader.h"
#include "kernel/probe_set.h"

// Declared, not included: see cli/command.h.
namespace CLI {
class App;
}  // namespace CLI

namespace netwatch::cli {

struct ProbeFlags {
  std::string attach = "auto";
  std::string transport = "auto";
  std::string rtt_interval = "1s";
  // The agent's default; trace sets "0" (every retransmission) before add_probe_flags().
  std::string retrans_interval = "1s";
  std::string drain_interval = "100ms";
  uint32_t ring_size_kib = 4096;

  kernel::ProbeOptions probe_options() const;       // throws FatalError(exit 2) on a bad value
  transport::ReaderOptions reader_options() const;  // likewise
};

void add_probe_flags(CLI::App& app, ProbeFlags& flags);

// "250ms", "1s", "2m", "500us", "100ns" -> nanoseconds; nullopt when malformed.
std::optional<uint64_t> parse_duration_ns(const std::string& text);

}  // namespace netwatch::cli
