// The real netwatch binary as a child process: its stdout read line by line as it arrives,
// stderr kept whole, and an exit status waited for with a deadline. The destructor kills a
// child that is still running, so a failed test never leaves probes attached.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace nwtest {

struct ExitStatus {
  bool exited = false;  // false: killed by a signal (signal holds it)
  int code = -1;
  int signal = 0;
};

class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Reads whatever stdout and stderr have, waiting at most `timeout` for something new;
  // returns the complete stdout lines that arrived.
  std::vector<std::string> read_lines(std::chrono::milliseconds timeout);
  std::vector<std::string> lines() const { return lines_; }  // every stdout line so far
  const std::string& stderr_text() const { return err_; }
  void signal(int sig);
  // The exit status, or nullopt if it is still running after `timeout`. Reads the pipes
  // meanwhile so a chatty child never blocks on a full pipe.
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);

 private:
  static void drain(Fd& fd, std::string& into);

  pid_t pid_ = -1;
  Fd out_;
  Fd err_fd_;
  std::string partial_;
  std::vector<std::string> lines_;
  std::string err_;
  std::optional<ExitStatus> status_;
};

}  // namespace nwtest
