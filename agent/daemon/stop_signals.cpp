#include "daemon/stop_signals.h"

#include <csignal>

namespace netwatch::daemon {

std::atomic<bool> g_stop{false};

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked poll returns EINTR and the loop sees g_stop
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace netwatch::daemon
