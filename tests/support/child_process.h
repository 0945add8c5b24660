// A program run as a child of a test or a benchmark, with one owner that reaps it. By default
// (the tests' netwatch runs) stdout is read line by line through a pipe as it arrives, stderr kept
// whole, and the destructor kills a child still running, so a failed test never leaves probes
// attached. ChildOptions adds what a benchmark's programs (iperf3, bpftrace, nft, the agent under
// load) need: output into an in-memory file nobody has to read meanwhile, and a process group.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nwtest {

struct ExitStatus {
  bool exited = false;  // false: killed by a signal (signal holds it)
  int code = -1;
  int signal = 0;
  int shell_code() const { return exited ? code : 128 + signal; }  // as a shell's $? says it
};

struct ChildOptions {
  // stdout and stderr interleaved into one in-memory file (output()) instead of pipes: a child
  // that prints a lot never blocks on a pipe while the caller is busy measuring.
  bool output_to_memory_file = false;
  // A process group of its own, stdin from /dev/null, killed with its parent even when the parent
  // is SIGKILLed (PR_SET_PDEATHSIG). signal(), stop() and the destructor then reach the whole
  // group (what iperf3 or bpftrace started too), and the destructor stops it gently (stop()).
  bool process_group = false;
};

// A benchmark's programs (iperf3, bpftrace, nft, wrk, the agent under load).
inline constexpr ChildOptions kBackgroundProgram{.output_to_memory_file = true, .process_group = true};

class ChildProcess {
 public:
  // Starts argv[0] (searched in PATH unless it holds a '/'); throws std::runtime_error when it
  // cannot be run.
  explicit ChildProcess(const std::vector<std::string>& argv, const ChildOptions& options = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }  // argv[0]
  // Pipes: reads whatever stdout and stderr have, waiting at most `timeout` for something new;
  // returns the complete stdout lines that arrived. With a memory file: sleeps `timeout`.
  std::vector<std::string> read_lines(std::chrono::milliseconds timeout);
  std::vector<std::string> lines() const { return lines_; }  // every stdout line so far
  const std::string& stderr_text() const { return err_; }
  // What it printed so far: the memory file, or with pipes the stderr read so far.
  std::string output() const;
  void signal(int sig);
  // The exit status, or nullopt if it is still running after `timeout` (or once *stop is set).
  // Reads the pipes meanwhile so a chatty child never blocks on a full pipe.
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout, const std::atomic<bool>* stop = nullptr);
  // The exit status if it has exited, without blocking or reading.
  std::optional<ExitStatus> exit_status();
  // SIGTERM, SIGKILL after 2 s, then reaps it. Idempotent.
  void stop();

 private:
  static void drain(int& fd, std::string& into);
  pid_t target() const { return options_.process_group ? -pid_ : pid_; }

  ChildOptions options_;
  std::string name_;
  pid_t pid_ = -1;
  int out_fd_ = -1;  // stdout pipe, or the memory file
  int err_fd_ = -1;  // stderr pipe
  std::string partial_;
  std::vector<std::string> lines_;
  std::string err_;
  std::optional<ExitStatus> status_;
};

// Runs argv to completion (at most 30 s) in a process group with its output in a memory file, and
// returns that output; throws std::runtime_error with the output when it fails.
std::string run_command(const std::vector<std::string>& argv);

// A process's open file descriptors and resident memory (VmRSS), from /proc; 0 once it is gone.
size_t open_fds(pid_t pid);
uint64_t rss_bytes(pid_t pid);

}  // namespace nwtest
