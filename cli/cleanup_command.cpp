// `netwatch cleanup`: removes what a stopped agent left pinned on purpose (its attached
// probes, maps and checkpoint), e.g. when netwatch is uninstalled from a node.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>

#include "kernel/kernel_features.h"
#include "util/log.h"
#include "kernel/pin_dir.h"
#include "cli/command.h"

namespace netwatch::cli {
namespace {

void remove_pins(const std::string& pin_dir) {
  if (!kernel::on_bpffs(pin_dir) || access(pin_dir.c_str(), F_OK) != 0) {
    util::log_info("nothing pinned at " + pin_dir);
    return;
  }
  kernel::PinDir pins(pin_dir);  // takes the lock: refuses while an agent runs there
  pins.remove_all();
  util::log_info("removed " + pin_dir + ": netwatch's programs are detached");
}

// The chart's cleanup mode runs this as a DaemonSet, whose pods must keep running: after the
// cleanup, --wait blocks until SIGTERM or SIGINT and then exits 0.
int run_cleanup(const std::string& pin_dir, bool wait) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (wait) sigprocmask(SIG_BLOCK, &stop, nullptr);  // before the work: a signal during it is kept
  kernel::require_load_privileges();
  remove_pins(pin_dir);
  if (!wait) return 0;
  util::log_info("cleanup done; waiting for SIGTERM");
  int signal = 0;
  sigwait(&stop, &signal);
  return 0;
}

}  // namespace

Command add_cleanup_command(CLI::App& parent) {
  auto pin_dir = std::make_shared<std::string>(kernel::PinDir::kDefault);
  CLI::App* app =
      parent.add_subcommand("cleanup", "Detach and remove the probes a stopped agent left pinned (needs root)");
  auto wait = std::make_shared<bool>(false);
  app->add_option("--pin-dir", *pin_dir, "The agent's --pin-dir")->capture_default_str();
  app->add_flag("--wait", *wait, "After the cleanup, wait for SIGTERM (the chart's per-node cleanup DaemonSet)");
  return {app, [pin_dir, wait] { return run_cleanup(*pin_dir, *wait); }};
}

}  // namespace netwatch::cli
