// A subcommand: its CLI11 node and what runs when it was chosen (returns the exit code).
#pragma once

#include <atomic>
#include <functional>

// Declared, not included: CLI11 is header-only and adds ~9 s (-O2 -g) to ~16 s (ASan) to every
// file that includes it. Only the files that add options include <CLI/CLI.hpp>.
namespace CLI {
class App;
}  // namespace CLI

namespace netwatch::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_trace_command(CLI::App& parent);
Command add_doctor_command(CLI::App& parent);
Command add_agent_command(CLI::App& parent);
Command add_top_command(CLI::App& parent);
Command add_cleanup_command(CLI::App& parent);

// Set by SIGINT/SIGTERM; long-running commands poll it between drains.
extern std::atomic<bool> g_stop;
void install_stop_signals();

}  // namespace netwatch::cli
