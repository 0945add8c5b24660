#include "bench/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "util/log.h"

namespace netwatch::bench {
namespace {

std::string join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

int decode_status(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::unique_ptr<ChildProcess> ChildProcess::spawn(const std::vector<std::string>& argv) {
  if (argv.empty()) throw util::FatalError("spawn: empty command");
  int output_fd = memfd_create(argv[0].c_str(), MFD_CLOEXEC);
  if (output_fd < 0) throw util::FatalError(std::string("memfd_create failed: ") + std::strerror(errno));
  int exec_pipe[2];  // closes on a successful exec; carries errno when exec fails
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    close(output_fd);
    throw util::FatalError(std::string("pipe2 failed: ") + std::strerror(errno));
  }
  // Built before fork: the child of a threaded parent may only make async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(output_fd);
    close(exec_pipe[0]);
    close(exec_pipe[1]);
    throw util::FatalError(std::string("fork failed: ") + std::strerror(err));
  }
  if (pid == 0) {
    setpgid(0, 0);
    // Dies with the benchmark even if the benchmark is SIGKILLed and never runs stop().
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(output_fd, 1);
    dup2(output_fd, 2);
    execvp(args[0], args.data());
    int err = errno;
    ssize_t ignored = write(exec_pipe[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  setpgid(pid, pid);  // also here, so kill(-pid) works before the child has run
  close(exec_pipe[1]);
  int err = 0;
  ssize_t n = read(exec_pipe[0], &err, sizeof(err));
  close(exec_pipe[0]);
  std::unique_ptr<ChildProcess> child(new ChildProcess(pid, output_fd, argv[0]));
  if (n == sizeof(err)) {
    child->stop();
    throw util::FatalError("cannot run " + argv[0] + ": " + std::strerror(err) +
                           (err == ENOENT ? " (install the benchmark's packages: scripts/install-deps.sh)" : ""));
  }
  util::log_info("started " + join(argv) + " as pid " + std::to_string(pid));
  return child;
}

ChildProcess::~ChildProcess() {
  stop();
  close(output_fd_);
}

std::string ChildProcess::output() const {
  struct stat st {};
  if (fstat(output_fd_, &st) != 0 || st.st_size <= 0) return {};
  std::string out(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = pread(output_fd_, out.data(), out.size(), 0);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::optional<int> ChildProcess::exit_code() {
  if (exit_code_) return exit_code_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) exit_code_ = decode_status(status);
  return exit_code_;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout, const std::atomic<bool>& stop) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exit_code() && !stop && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return exit_code_;
}

bool ChildProcess::wait_for_output(std::string_view needle, std::chrono::milliseconds timeout,
                                   const std::atomic<bool>& stop) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!stop && std::chrono::steady_clock::now() < deadline) {
    if (output().find(needle) != std::string::npos) return true;
    if (exit_code()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void ChildProcess::stop() {
  if (exit_code()) return;
  kill(-pid_, SIGTERM);
  for (int i = 0; i < 100 && !exit_code(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (exit_code()) return;
  util::log_warn(name_ + " (pid " + std::to_string(pid_) + ") ignored SIGTERM; killing it");
  kill(-pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) exit_code_ = decode_status(status);
}

std::string run_command(const std::vector<std::string>& argv) {
  static const std::atomic<bool> never{false};
  auto child = ChildProcess::spawn(argv);
  auto code = child->wait(std::chrono::seconds(30), never);
  std::string out = child->output();
  if (!code) throw util::FatalError(join(argv) + " did not finish in 30 s");
  if (*code != 0) throw util::FatalError(join(argv) + " failed (exit " + std::to_string(*code) + "): " + out);
  return out;
}

}  // namespace netwatch::bench
