// `netwatch cleanup`: removes what a stopped agent left pinned on purpose (its attached
// probes, maps and checkpoint), e.g. when netwatch is uninstalled from a node.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include "agent/kernel_features.h"
#include "agent/log.h"
#include "agent/pin_dir.h"
#include "cli/command.h"

namespace netwatch::cli {
namespace {

int run_cleanup(const std::string& pin_dir) {
  require_load_privileges();
  if (!on_bpffs(pin_dir) || access(pin_dir.c_str(), F_OK) != 0) {
    log_info("nothing pinned at " + pin_dir);
    return 0;
  }
  PinDir pins(pin_dir);  // takes the lock: refuses while an agent runs there
  pins.remove_all();
  log_info("removed " + pin_dir + ": netwatch's programs are detached");
  return 0;
}

}  // namespace

Command add_cleanup_command(CLI::App& parent) {
  auto pin_dir = std::make_shared<std::string>(PinDir::kDefault);
  CLI::App* app =
      parent.add_subcommand("cleanup", "Detach and remove the probes a stopped agent left pinned (needs root)");
  app->add_option("--pin-dir", *pin_dir, "The agent's --pin-dir")->capture_default_str();
  return {app, [pin_dir] { return run_cleanup(*pin_dir); }};
}

}  // namespace netwatch::cli
