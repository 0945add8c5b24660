#include "tests/support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace nwtest {

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Only async-signal-safe calls between fork and exec: the test process has threads.
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    // Nothing else of the test's: an orphaned child must not hold its sockets, ports or lock files.
    close_range(3, ~0u, 0);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  out_ = Fd(out[0]);
  err_fd_ = Fd(err[0]);
  fcntl(out_.get(), F_SETFL, O_NONBLOCK);
  fcntl(err_fd_.get(), F_SETFL, O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
  if (!status_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::vector<std::string> ChildProcess::read_lines(std::chrono::milliseconds timeout) {
  size_t before = lines_.size();
  pollfd fds[2] = {{out_.valid() ? out_.get() : -1, POLLIN, 0}, {err_fd_.valid() ? err_fd_.get() : -1, POLLIN, 0}};
  if (poll(fds, 2, static_cast<int>(timeout.count())) > 0) {
    drain(out_, partial_);
    drain(err_fd_, err_);
  }
  for (size_t nl; (nl = partial_.find('\n')) != std::string::npos; partial_.erase(0, nl + 1))
    lines_.push_back(partial_.substr(0, nl));
  return {lines_.begin() + static_cast<long>(before), lines_.end()};
}

void ChildProcess::drain(Fd& fd, std::string& into) {
  char buf[8192];
  ssize_t n;
  while (fd.valid() && (n = read(fd.get(), buf, sizeof(buf))) != 0) {
    if (n < 0) return;  // EAGAIN: nothing more for now
    into.append(buf, static_cast<size_t>(n));
  }
  fd.reset();  // end of file: the child and everything it started are gone
}

void ChildProcess::signal(int sig) {
  if (kill(pid_, sig) != 0) throw std::runtime_error(std::string("kill: ") + std::strerror(errno));
}

std::optional<ExitStatus> ChildProcess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    int raw = 0;
    pid_t r = waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      ExitStatus s;
      s.exited = WIFEXITED(raw);
      s.code = s.exited ? WEXITSTATUS(raw) : -1;
      s.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
      status_ = s;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    read_lines(10ms);  // also the pause between checks
  }
  // The pipes hold whatever the child wrote last; read them to their end.
  for (auto end = std::chrono::steady_clock::now() + 1s;
       (out_.valid() || err_fd_.valid()) && std::chrono::steady_clock::now() < end;)
    read_lines(50ms);
  return status_;
}

}  // namespace nwtest
