// A program the benchmark starts (iperf3, bpftrace, nft). One owner stops and reaps it however
// the benchmark ends: the destructor on return or exception, the parent-death signal if the
// benchmark itself is killed.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netwatch::bench {

class ChildProcess {
 public:
  // Starts argv[0] (searched in PATH) in a process group of its own, stdin from /dev/null,
  // stdout and stderr into an in-memory file. Throws FatalError when it cannot be started.
  static std::unique_ptr<ChildProcess> spawn(const std::vector<std::string>& argv);
  ~ChildProcess();  // stop()
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  // What it printed so far, stdout and stderr interleaved.
  std::string output() const;
  // The exit code once it has exited (128 + signal when killed), without blocking.
  std::optional<int> exit_code();
  // Waits for exit; nullopt when timeout passed or stop was set first.
  std::optional<int> wait(std::chrono::milliseconds timeout, const std::atomic<bool>& stop);
  // Waits until its output contains needle; false when it exited, timed out or stop was set.
  bool wait_for_output(std::string_view needle, std::chrono::milliseconds timeout, const std::atomic<bool>& stop);
  // SIGTERM to its process group, SIGKILL after a grace period, then reaps it. Idempotent.
  void stop();

 private:
  ChildProcess(pid_t pid, int output_fd, std::string name) : pid_(pid), output_fd_(output_fd), name_(std::move(name)) {}

  pid_t pid_;
  int output_fd_;
  std::string name_;
  std::optional<int> exit_code_;
};

// Runs argv to completion and returns its output; throws FatalError with that output when it
// cannot start or exits non-zero.
std::string run_command(const std::vector<std::string>& argv);

}  // namespace netwatch::bench
