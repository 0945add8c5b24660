// `netwatch top`: which connections are slow or losing packets, live. The data comes from a
// running agent (--agent URL, no privileges) or from probes loaded here (root); either way it
// is one snapshot document, parsed into a TopSnapshot and drawn by the pure render().
#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "util/clock.h"
#include "util/log.h"
#include "cli/command.h"
#include "daemon/stop_signals.h"
#include "cli/probe_flags.h"
#include "cli/top/terminal.h"
#include "cli/top/columns.h"
#include "cli/top/keys.h"
#include "cli/top/model.h"
#include "cli/top/render.h"
#include "cli/top/source.h"

namespace netwatch::cli {
namespace {

using Clock = util::MonotonicClock;
using namespace std::chrono_literals;
using top::TopSnapshot;
using top::ViewState;

struct TopFlags {
  ProbeFlags probe;
  std::string agent;
  std::string sort;
  std::string interval = "1s";
  size_t rows = 0;
  std::string filter;
  int family = 0;
  bool once = false;
  bool json = false;
};

constexpr uint64_t kMinIntervalNs = 100'000'000;
constexpr uint64_t kMaxIntervalNs = 3'600'000'000'000ULL;
constexpr int kExitInterrupted = 130;

std::string column_keys(bool flows) {
  std::string out;
  auto add = [&](std::string_view key) { out += (out.empty() ? "" : ", ") + std::string(key); };
  if (flows)
    for (const auto& c : top::flow_columns()) add(c.key);
  else
    for (const auto& c : top::connection_columns()) add(c.key);
  return out;
}

ViewState initial_state(const TopFlags& flags) {
  ViewState state = top::default_view_state();
  auto interval = parse_duration_ns(flags.interval);
  if (!interval || *interval < kMinIntervalNs || *interval > kMaxIntervalNs)
    throw util::FatalError(
        "--interval '" + flags.interval + "' must be a duration between 100ms and 60m (e.g. 1s, 500ms)",
        util::kExitUsage);
  state.interval_ns = *interval;
  if (!flags.sort.empty()) {
    auto c = top::find_column(top::connection_columns(), flags.sort);
    auto f = top::find_column(top::flow_columns(), flags.sort);
    if (!c && !f)
      throw util::FatalError("--sort '" + flags.sort + "' is not a column; connections: " + column_keys(false) +
                                 "; flows: " + column_keys(true),
                             util::kExitUsage);
    if (c) state.connection_sort = *c;
    if (f) state.flow_sort = *f;
    if (!c) state.view = top::View::flows;  // a flow-only column: start in the flow view
  }
  state.filter = flags.filter;
  state.max_rows = flags.rows;
  state.family = flags.family;
  return state;
}

// One snapshot from the source, parsed and narrowed to --family. Throws SourceError.
TopSnapshot take(SnapshotSource& source, int family) {
  nlohmann::json document = source.fetch();
  try {
    TopSnapshot s = top::parse_snapshot(document);
    top::keep_family(s, family);
    return s;
  } catch (const top::SnapshotError& e) {
    throw SourceError(std::string(e.what()) + " (from " + source.describe() + ")");
  }
}

// Keeps reading the kernel (standalone) for `ns`; false when interrupted by SIGINT/SIGTERM.
bool wait_pumping(SnapshotSource& source, uint64_t ns) {
  auto until = Clock::now() + std::chrono::nanoseconds(ns);
  auto step = std::chrono::milliseconds(source.pump_interval_ms() ? source.pump_interval_ms() : 50);
  while (!daemon::g_stop && Clock::now() < until) {
    std::this_thread::sleep_for(std::min<Clock::duration>(step, until - Clock::now()));
    source.pump();
  }
  return !daemon::g_stop;
}

int print_json(SnapshotSource& source, bool standalone, uint64_t interval_ns) {
  if (standalone && !wait_pumping(source, interval_ns)) return kExitInterrupted;
  nlohmann::json document;
  try {
    document = source.fetch();
    top::parse_snapshot(document);  // a document the view could not read is an error here too
  } catch (const SourceError& e) {
    throw util::FatalError(e.what(), 1);
  } catch (const top::SnapshotError& e) {
    throw util::FatalError(std::string(e.what()) + " (from " + source.describe() + ")", 1);
  }
  std::string text = document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", text.c_str());
  return 0;
}

// Two snapshots an interval apart, so TX/s and RX/s are measured, then one frame as text.
int print_once(SnapshotSource& source, ViewState state, bool standalone, int family) {
  state.interactive = false;
  state.source = source.describe();
  try {
    if (standalone && !wait_pumping(source, state.interval_ns)) return kExitInterrupted;  // learn connections
    TopSnapshot first = take(source, family);
    if (!wait_pumping(source, state.interval_ns)) return kExitInterrupted;
    TopSnapshot second = take(source, family);
    // An agent publishes on its own timer: the same snapshot twice measures nothing.
    auto deadline = Clock::now() + std::chrono::nanoseconds(state.interval_ns) + 1s;
    while (second.ts_ns == first.ts_ns && Clock::now() < deadline) {
      if (!wait_pumping(source, 100'000'000)) return kExitInterrupted;
      second = take(source, family);
    }
    top::apply_rates(second, first);
    // Like ps: the terminal's width on a terminal, every column in full into a pipe.
    int width = isatty(STDOUT_FILENO) ? terminal_size(STDOUT_FILENO).width : 0;
    for (const std::string& line : top::render(second, state, width, 0, false)) std::printf("%s\n", line.c_str());
    return 0;
  } catch (const SourceError& e) {
    throw util::FatalError(e.what(), 1);
  }
}

int run_interactive(SnapshotSource& source, ViewState state, int family) {
  state.source = source.describe();
  // The first snapshot before the alternate screen: an unreachable agent is one plain line.
  TopSnapshot shown;
  try {
    shown = take(source, family);
  } catch (const SourceError& e) {
    throw util::FatalError(e.what(), 1);
  }
  std::unique_ptr<Terminal> terminal = Terminal::open();
  bool color = color_wanted(STDOUT_FILENO);
  auto next_refresh = Clock::now() + std::chrono::nanoseconds(state.interval_ns);
  bool dirty = true;
  while (!daemon::g_stop) {
    if (Terminal::suspend_requested()) {
      terminal->suspend();
      dirty = true;
    }
    auto now = Clock::now();
    if (!state.paused && now >= next_refresh) {
      try {
        TopSnapshot next = take(source, family);
        if (next.ts_ns != shown.ts_ns) {  // the agent publishes on its own timer
          top::apply_rates(next, shown);
          shown = std::move(next);
        }
        state.notice.clear();
      } catch (const SourceError& e) {
        state.notice = std::string(e.what()) + "; retrying, the rows are from the last answer";
      }
      next_refresh = now + std::chrono::nanoseconds(state.interval_ns);
      dirty = true;
    }
    TerminalSize size = terminal->size();
    if (dirty) {
      terminal->draw(top::render(shown, state, size.width, size.height, color));
      dirty = false;
    }
    auto wait = state.paused ? Clock::duration(1s) : std::max<Clock::duration>(next_refresh - Clock::now(), 0ms);
    if (source.pump_interval_ms())
      wait = std::min<Clock::duration>(wait, std::chrono::milliseconds(source.pump_interval_ms()));
    Key key = terminal->read_key(std::chrono::duration_cast<std::chrono::milliseconds>(wait));
    source.pump();
    if (key.code == KeyCode::none) continue;
    size_t rows = top::visible_rows(shown, state).size();
    size_t page = size.height > 6 ? size_t(size.height - 6) : 1;
    switch (top::apply_key(state, key, rows, page)) {
      case top::KeyAction::quit:
        return 0;
      case top::KeyAction::refresh_now:
        next_refresh = Clock::now();
        [[fallthrough]];
      case top::KeyAction::redraw:
        dirty = true;
        break;
      case top::KeyAction::none:
        break;
    }
  }
  return 0;
}

int run_top(const TopFlags& flags) {
  ViewState state = initial_state(flags);
  std::optional<AgentUrl> url;
  if (!flags.agent.empty()) {
    std::string why;
    url = parse_agent_url(flags.agent, &why);
    if (!url) throw util::FatalError("--agent '" + flags.agent + "': " + why, util::kExitUsage);
  }
  if (!flags.once && !flags.json && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)))
    throw util::FatalError("top needs a terminal on stdin and stdout; use --once or --json in scripts",
                           util::kExitUsage);

  daemon::install_stop_signals();
  struct sigaction hup {};
  hup.sa_handler = [](int) { daemon::g_stop = true; };  // the terminal closed: unwind and restore like Ctrl-C
  sigemptyset(&hup.sa_mask);
  sigaction(SIGHUP, &hup, nullptr);

  std::unique_ptr<SnapshotSource> source = url ? make_agent_source(*url) : make_standalone_source(flags.probe);
  bool standalone = !url;
  try {
    if (flags.json) return print_json(*source, standalone, state.interval_ns);
    if (flags.once) return print_once(*source, state, standalone, flags.family);
    return run_interactive(*source, state, flags.family);
  } catch (const util::FatalError&) {
    throw;
  } catch (const std::exception& e) {
    // Anything else still unwinds through the Terminal's destructor first.
    throw util::FatalError(std::string("top: ") + e.what(), 1);
  }
}

}  // namespace

Command add_top_command(CLI::App& parent) {
  auto flags = std::make_shared<TopFlags>();
  CLI::App* app = parent.add_subcommand(
      "top",
      "Live view of connections and flows: RTT, retransmits, connect latency (from an agent, or standalone as root)");
  CLI::Option* agent = app->add_option("--agent", flags->agent,
                                       "Read a running agent, http://HOST:PORT (no privileges needed); "
                                       "without it the probes are loaded here (root)");
  app->add_option("--sort", flags->sort, "Sort column, e.g. retrans, rtt, retrans%, connect, tx (h lists them)");
  app->add_option("--interval", flags->interval, "Refresh interval (100ms to 60m)")->capture_default_str();
  app->add_option("--rows", flags->rows, "Show at most N rows (default: as many as fit)");
  app->add_option("--filter", flags->filter, "Only rows where some column contains TEXT (case-insensitive)");
  app->add_option("--family", flags->family, "Only IPv4 (4) or IPv6 (6)")->check(CLI::IsMember({4, 6}));
  CLI::Option* once =
      app->add_flag("--once", flags->once,
                    "Print one frame as plain text and exit (two snapshots --interval apart, so "
                    "TX/s and RX/s are measured; standalone waits one more interval to learn connections)");
  app->add_flag("--json", flags->json,
                "Print one snapshot as JSON (the /api/v1/connections format, unfiltered) and exit; standalone "
                "waits --interval first")
      ->excludes(once);
  add_probe_flags(*app, flags->probe);
  for (const char* name :
       {"--attach", "--transport", "--rtt-interval", "--retrans-interval", "--drain-interval", "--ring-size"})
    app->get_option(name)->excludes(agent);
  return {app, [flags] { return run_top(*flags); }};
}

}  // namespace netwatch::cli
