// `netwatch trace`: the kernel's events as they happen, as text or JSON lines.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <set>

#include "transport/event_reader.h"
#include "util/clock.h"
#include "util/log.h"
#include "cli/command.h"
#include "daemon/stop_signals.h"
#include "cli/event_format.h"
#include "cli/probe_flags.h"

namespace netwatch::cli {
namespace {

struct TraceFlags {
  ProbeFlags probe;
  bool json = false;
  std::vector<std::string> types;
  std::vector<uint16_t> ports;
  std::vector<uint32_t> pids;
  std::string duration;
  uint64_t count = 0;
};

class TracePrinter : public event::EventSink {
 public:
  TracePrinter(const TraceFlags& flags, std::set<event::EventType> types)
      : flags_(flags),
        types_(std::move(types)),
        ports_(flags.ports.begin(), flags.ports.end()),
        pids_(flags.pids.begin(), flags.pids.end()) {}

  void on_event(const event::Event& e) override {
    if (!types_.empty() && !types_.count(e.type)) return;
    if (!ports_.empty() && !ports_.count(e.sport) && !ports_.count(e.dport)) return;
    if (!pids_.empty() && !pids_.count(e.pid)) return;
    if (flags_.count && printed_ >= flags_.count) return;
    std::string line = flags_.json ? event_to_json(e, clock_).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : event_to_text(e, clock_);
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    ++printed_;
  }

  bool done() const { return flags_.count && printed_ >= flags_.count; }

 private:
  const TraceFlags& flags_;
  std::set<event::EventType> types_;
  std::set<uint16_t> ports_;
  std::set<uint32_t> pids_;
  util::WallClock clock_;
  uint64_t printed_ = 0;
};

int run_trace(const TraceFlags& flags) {
  std::set<event::EventType> types;
  for (const std::string& name : flags.types) {
    auto t = event::parse_event_type(name);
    if (!t)
      throw util::FatalError(
          "--type '" + name + "' is not one of connect, accept, connect_failed, retransmit, rtt, close",
          util::kExitUsage);
    types.insert(*t);
  }
  std::optional<uint64_t> duration_ns;
  if (!flags.duration.empty() && !(duration_ns = parse_duration_ns(flags.duration)))
    throw util::FatalError("--duration '" + flags.duration + "' is not a duration (e.g. 10s, 500ms)", util::kExitUsage);
  kernel::ProbeOptions probe_options = flags.probe.probe_options();
  transport::ReaderOptions reader_options = flags.probe.reader_options();

  daemon::install_stop_signals();
  auto probes = kernel::ProbeSet::start(probe_options);
  TracePrinter printer(flags, std::move(types));
  transport::EventReader reader(*probes, printer, reader_options);
  if (!flags.json) std::puts(text_header().c_str());
  std::fflush(stdout);

  auto deadline = util::MonotonicClock::now() + std::chrono::nanoseconds(duration_ns.value_or(0));
  while (!daemon::g_stop && !printer.done()) {
    reader.poll();
    std::fflush(stdout);
    if (duration_ns && util::MonotonicClock::now() >= deadline) break;
  }
  reader.drain();
  std::fflush(stdout);

  event::KernelCounters counters = probes->counters();
  if (counters.total_lost())
    util::log_warn(std::to_string(counters.total_lost()) +
                   " events were lost because the event buffer was full; raise --ring-size or lower --drain-interval");
  if (counters.state_full)
    util::log_warn(std::to_string(counters.state_full) + " sockets were not tracked: per-socket state was full");
  if (counters.listeners_full)
    util::log_warn(std::to_string(counters.listeners_full) +
                   " listening sockets got no owner (the listener map was full): their connections have pid 0");
  if (reader.decode_errors())
    util::log_warn(std::to_string(reader.decode_errors()) + " malformed records were dropped");
  return 0;
}

}  // namespace

Command add_trace_command(CLI::App& parent) {
  auto flags = std::make_shared<TraceFlags>();
  CLI::App* app = parent.add_subcommand("trace", "Print TCP events as they happen (needs root)");
  app->add_flag("--json", flags->json, "One JSON object per line");
  app->add_option("--type", flags->types, "Only these event types (repeat or comma-separate)")->delimiter(',');
  app->add_option("--port", flags->ports, "Only events with this local or remote port")->delimiter(',');
  app->add_option("--pid", flags->pids, "Only events of this connecting process")->delimiter(',');
  app->add_option("--duration", flags->duration, "Stop after this long (e.g. 30s)");
  app->add_option("--count", flags->count, "Stop after printing this many events");
  // Every retransmission is its own event here: trace is for watching them one by one.
  flags->probe.retrans_interval = "0";
  add_probe_flags(*app, flags->probe);
  return {app, [flags] { return run_trace(*flags); }};
}

}  // namespace netwatch::cli
