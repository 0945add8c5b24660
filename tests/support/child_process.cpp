#include "tests/support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace nwtest {

using namespace std::chrono_literals;

namespace {

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const ChildOptions& options) : options_(options) {
  if (argv.empty()) throw std::runtime_error("ChildProcess: empty command");
  name_ = argv[0];
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  int exec_error[2];  // closes on a successful exec; carries errno when exec fails
  if (options_.output_to_memory_file) {
    out[0] = out[1] = memfd_create(argv[0].c_str(), MFD_CLOEXEC);
    if (out[0] < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
  } else if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  if (pipe2(exec_error, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  // Built before fork: the child of a threaded parent may only make async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = getpid();

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (options_.process_group) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    }
    dup2(out[1], STDOUT_FILENO);
    dup2(options_.output_to_memory_file ? out[1] : err[1], STDERR_FILENO);
    // Nothing else of the caller's: an orphaned child must not hold its sockets, ports or lock
    // files. exec_error[1] stays (it is close-on-exec).
    close_range(3, static_cast<unsigned>(exec_error[1]) - 1, 0);
    close_range(static_cast<unsigned>(exec_error[1]) + 1, ~0u, 0);
    execvp(args[0], args.data());
    int e = errno;
    ssize_t ignored = write(exec_error[1], &e, sizeof(e));
    (void)ignored;
    _exit(127);
  }
  if (options_.process_group) setpgid(pid_, pid_);  // also here: signal() may come before the child ran
  close(exec_error[1]);
  if (!options_.output_to_memory_file) {
    close(out[1]);
    close(err[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
  }
  out_fd_ = out[0];
  err_fd_ = err[0];
  int exec_errno = 0;
  ssize_t n = read(exec_error[0], &exec_errno, sizeof(exec_errno));
  close(exec_error[0]);
  if (n == sizeof(exec_errno)) {
    waitpid(pid_, nullptr, 0);
    status_ = ExitStatus{true, 127, 0};
    close_fd(out_fd_);
    close_fd(err_fd_);
    throw std::runtime_error("cannot run " + name_ + ": " + std::strerror(exec_errno) +
                             (exec_errno == ENOENT ? " (scripts/install-deps.sh installs what the tests use)" : ""));
  }
}

ChildProcess::~ChildProcess() {
  if (options_.process_group) {
    stop();
  } else if (!status_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  close_fd(out_fd_);
  close_fd(err_fd_);
}

std::vector<std::string> ChildProcess::read_lines(std::chrono::milliseconds timeout) {
  size_t before = lines_.size();
  if (options_.output_to_memory_file) {
    std::this_thread::sleep_for(timeout);
    return {};
  }
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};  // a closed (-1) one is ignored
  if (poll(fds, 2, static_cast<int>(timeout.count())) > 0) {
    drain(out_fd_, partial_);
    drain(err_fd_, err_);
  }
  for (size_t nl; (nl = partial_.find('\n')) != std::string::npos; partial_.erase(0, nl + 1))
    lines_.push_back(partial_.substr(0, nl));
  return {lines_.begin() + static_cast<long>(before), lines_.end()};
}

void ChildProcess::drain(int& fd, std::string& into) {
  char buf[8192];
  ssize_t n;
  while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
    if (n < 0) return;  // EAGAIN: nothing more for now
    into.append(buf, static_cast<size_t>(n));
  }
  close_fd(fd);  // end of file: the child and everything it started are gone
}

std::string ChildProcess::output() const {
  if (!options_.output_to_memory_file) return err_;
  struct stat st {};
  if (out_fd_ < 0 || fstat(out_fd_, &st) != 0 || st.st_size <= 0) return {};
  std::string out(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = pread(out_fd_, out.data(), out.size(), 0);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

void ChildProcess::signal(int sig) {
  if (kill(target(), sig) != 0) throw std::runtime_error(std::string("kill: ") + std::strerror(errno));
}

std::optional<ExitStatus> ChildProcess::exit_status() {
  if (status_) return status_;
  int raw = 0;
  if (waitpid(pid_, &raw, WNOHANG) == pid_) {
    ExitStatus s;
    s.exited = WIFEXITED(raw);
    s.code = s.exited ? WEXITSTATUS(raw) : -1;
    s.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
    status_ = s;
  }
  return status_;
}

std::optional<ExitStatus> ChildProcess::wait(std::chrono::milliseconds timeout, const std::atomic<bool>* stop) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exit_status()) {
    if (std::chrono::steady_clock::now() >= deadline || (stop && *stop)) return std::nullopt;
    read_lines(options_.output_to_memory_file ? 20ms : 10ms);  // also the pause between checks
  }
  // The pipes hold whatever the child wrote last; read them to their end.
  for (auto end = std::chrono::steady_clock::now() + 1s;
       !options_.output_to_memory_file && (out_fd_ >= 0 || err_fd_ >= 0) && std::chrono::steady_clock::now() < end;)
    read_lines(50ms);
  return status_;
}

void ChildProcess::stop() {
  if (pid_ <= 0 || exit_status()) return;
  kill(target(), SIGTERM);
  for (int i = 0; i < 100 && !exit_status(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (exit_status()) return;
  std::fprintf(stderr, "%s (pid %d) ignored SIGTERM; killing it\n", name_.c_str(), pid_);
  kill(target(), SIGKILL);
  int raw = 0;
  if (waitpid(pid_, &raw, 0) == pid_) status_ = ExitStatus{false, -1, SIGKILL};
}

std::string run_command(const std::vector<std::string>& argv) {
  ChildProcess child(argv, kBackgroundProgram);
  std::optional<ExitStatus> status = child.wait(std::chrono::seconds(30));
  std::string out = child.output();
  if (!status) throw std::runtime_error(joined(argv) + " did not finish in 30 s");
  if (status->shell_code() != 0)
    throw std::runtime_error(joined(argv) + " failed (exit " + std::to_string(status->shell_code()) + "): " + out);
  return out;
}

size_t open_fds(pid_t pid) {
  size_t n = 0;
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!dir) return 0;
  while (dirent* e = readdir(dir))
    if (e->d_name[0] != '.') ++n;
  closedir(dir);
  return n;
}

uint64_t rss_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

}  // namespace nwtest
