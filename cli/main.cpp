// netwatch: one binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <vector>

#include "util/log.h"
#include "cli/command.h"

int main(int argc, char** argv) {
  using namespace netwatch;
  CLI::App app{"netwatch: which TCP connections on this node are slow or losing packets, and since when"};
  app.set_version_flag("--version", NETWATCH_VERSION);
  app.require_subcommand(1);
  std::string level = "info";
  app.add_option("--log-level", level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();

  std::vector<cli::Command> commands = {cli::add_agent_command(app), cli::add_trace_command(app),
                                        cli::add_doctor_command(app), cli::add_top_command(app),
                                        cli::add_cleanup_command(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "netwatch: %s; see netwatch --help\n", e.what());
    return util::kExitUsage;
  }
  util::set_log_level(level == "debug"   ? util::LogLevel::debug
                      : level == "warn"  ? util::LogLevel::warn
                      : level == "error" ? util::LogLevel::error
                                         : util::LogLevel::info);

  try {
    for (const cli::Command& command : commands)
      if (command.app->parsed()) return command.run();
  } catch (const util::FatalError& e) {
    std::fprintf(stderr, "netwatch: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
