#include "cli/probe_flags.h"

#include <CLI/CLI.hpp>

#include <cstdlib>

#include "util/log.h"

namespace netwatch::cli {

std::optional<uint64_t> parse_duration_ns(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  uint64_t value = std::strtoull(text.substr(0, digits).c_str(), nullptr, 10);
  std::string unit = text.substr(digits);
  uint64_t scale;
  if (unit == "ns") scale = 1;
  else if (unit == "us") scale = 1'000;
  else if (unit == "ms") scale = 1'000'000;
  else if (unit == "s") scale = 1'000'000'000;
  else if (unit == "m") scale = 60'000'000'000;
  else return std::nullopt;
  return value * scale;
}

void add_probe_flags(CLI::App& app, ProbeFlags& flags) {
  app.add_option("--attach", flags.attach, "Probe variant: auto (tp_btf, else tracepoint), tp_btf, tracepoint")
      ->check(CLI::IsMember({"auto", "tp_btf", "tracepoint"}))
      ->capture_default_str();
  app.add_option("--transport", flags.transport, "Event transport: auto (ringbuf where available), ringbuf, perfbuf")
      ->check(CLI::IsMember({"auto", "ringbuf", "perfbuf"}))
      ->capture_default_str();
  app.add_option("--rtt-interval", flags.rtt_interval, "At most one RTT sample per connection per interval")
      ->capture_default_str();
  app.add_option("--retrans-interval", flags.retrans_interval,
                 "At most one retransmit report per connection per interval (the first after a quiet interval "
                 "at once, then none while RTT samples carry the count); 0: one per retransmission. "
                 "Counters count every segment either way")
      ->capture_default_str();
  app.add_option("--drain-interval", flags.drain_interval, "How often the event buffer is drained")
      ->capture_default_str();
  app.add_option("--ring-size", flags.ring_size_kib, "Ring buffer size in KiB (power of two, 4..1048576)")
      ->capture_default_str();
}

kernel::ProbeOptions ProbeFlags::probe_options() const {
  kernel::ProbeOptions o;
  if (attach == "tp_btf") o.variant = kernel::AttachVariant::tp_btf;
  if (attach == "tracepoint") o.variant = kernel::AttachVariant::tracepoint;
  if (transport == "ringbuf") o.transport = kernel::Transport::ringbuf;
  if (transport == "perfbuf") o.transport = kernel::Transport::perfbuf;
  auto rtt = parse_duration_ns(rtt_interval);
  if (!rtt || *rtt < 1'000'000)
    throw util::FatalError("--rtt-interval '" + rtt_interval + "' is not a duration of at least 1ms (e.g. 1s, 250ms)",
                           util::kExitUsage);
  o.rtt_interval_ns = *rtt;
  auto retrans = retrans_interval == "0" ? std::optional<uint64_t>(0) : parse_duration_ns(retrans_interval);
  if (!retrans)
    throw util::FatalError("--retrans-interval '" + retrans_interval + "' is not a duration (e.g. 1s, 250ms, or 0)",
                           util::kExitUsage);
  o.retrans_interval_ns = *retrans;
  bool pow2 = ring_size_kib >= 4 && ring_size_kib <= (1u << 20) && (ring_size_kib & (ring_size_kib - 1)) == 0;
  if (!pow2)
    throw util::FatalError(
        "--ring-size " + std::to_string(ring_size_kib) + " must be a power of two between 4 and 1048576 KiB",
        util::kExitUsage);
  o.ring_bytes = ring_size_kib * 1024u;
  return o;
}

transport::ReaderOptions ProbeFlags::reader_options() const {
  auto drain = parse_duration_ns(drain_interval);
  if (!drain || *drain < 1'000'000 || *drain > 10'000'000'000ULL)
    throw util::FatalError("--drain-interval '" + drain_interval + "' must be a duration between 1ms and 10s",
                           util::kExitUsage);
  transport::ReaderOptions r;
  r.drain_interval_ms = static_cast<int>(*drain / 1'000'000);
  return r;
}

}  // namespace netwatch::cli
