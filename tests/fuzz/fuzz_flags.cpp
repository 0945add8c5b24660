// What users type: the CLI (argv split at NUL bytes), the JSON config file, durations, listen
// addresses and the HTTP ?limit= value. Parsing only: nothing is run.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "serve/http_server.h"
#include "util/log.h"
#include "cli/command.h"
#include "cli/json_config.h"
#include "cli/probe_flags.h"

using namespace netwatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  cli::parse_duration_ns(text);
  util::parse_listen_address(text);
  serve::parse_connections_limit(text);
  try {
    std::istringstream in(text);
    cli::JsonConfig("agent").from_config(in);
  } catch (const CLI::Error&) {
  }

  std::vector<std::string> args;
  std::string arg;
  for (char c : text) {
    if (c == '\0') {
      args.push_back(arg);
      arg.clear();
    } else {
      arg += c;
    }
  }
  args.push_back(arg);
  CLI::App app;
  std::vector<cli::Command> commands = {cli::add_agent_command(app), cli::add_trace_command(app),
                                        cli::add_doctor_command(app)};
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes argv reversed
    app.parse(reversed);
  } catch (const CLI::Error&) {
  } catch (const util::FatalError&) {
  }
  return 0;
}
