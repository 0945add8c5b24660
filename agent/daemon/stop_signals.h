// SIGINT and SIGTERM end the long-running commands (the agent, trace, top): the handler only
// sets a flag, and the command's loop returns, so every destructor runs and every link and
// program is released.
#pragma once

#include <atomic>

namespace netwatch::daemon {

// Set by SIGINT/SIGTERM; long-running loops poll it between drains.
extern std::atomic<bool> g_stop;
void install_stop_signals();

}  // namespace netwatch::daemon
