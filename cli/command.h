// A subcommand: its CLI11 node and what runs when it was chosen (returns the exit code).
#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>

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
