// A subcommand: its CLI11 node and what runs when it was chosen (returns the exit code).
#pragma once

#include <functional>

// Declared, not included: CLI11 is header-only and adds seconds of compile time to every file
// that includes it. Only the files that add options include <CLI/CLI.hpp>.
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

}  // namespace netwatch::cli
