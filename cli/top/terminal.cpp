#include "cli/top/terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/log.h"

namespace netwatch::cli {
namespace {

// ?1049: alternate screen (saves the cursor and the shell's screen); ?25: cursor visibility.
constexpr char kEnter[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";
constexpr char kLeave[] = "\x1b[0m\x1b[?25h\x1b[?1049l";
// Synchronized output (DEC mode 2026): terminals that know it paint a frame at once; the others
// ignore an unknown private mode.
constexpr char kBeginFrame[] = "\x1b[?2026h";
constexpr char kEndFrame[] = "\x1b[?2026l";

// Signal handlers can only reach globals. One Terminal exists at a time.
int g_wake[2] = {-1, -1};  // self-pipe: a handler writes, poll() wakes
std::atomic<bool> g_resized{false};
std::atomic<bool> g_suspend{false};
termios g_saved;
std::atomic<bool> g_active{false};

void wake() {
  int saved = errno;
  if (g_wake[1] >= 0) {
    [[maybe_unused]] ssize_t n = ::write(g_wake[1], "x", 1);
  }
  errno = saved;
}

void on_winch(int) {
  g_resized = true;
  wake();
}
void on_tstp(int) {
  g_suspend = true;
  wake();
}
// A crash must not leave the shell in raw mode on the alternate screen: restore with
// async-signal-safe calls only, then die of the same signal.
void on_fatal(int sig) {
  if (g_active) {
    [[maybe_unused]] ssize_t n = ::write(STDOUT_FILENO, kLeave, sizeof(kLeave) - 1);
    tcsetattr(STDIN_FILENO, TCSADRAIN, &g_saved);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void set_handler(int sig, void (*handler)(int), int flags = SA_RESTART) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = flags;
  sigaction(sig, &sa, nullptr);
}

}  // namespace

bool color_wanted(int fd) {
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color && *no_color) return false;
  const char* term = std::getenv("TERM");
  if (term && std::strcmp(term, "dumb") == 0) return false;
  return isatty(fd);
}

TerminalSize terminal_size(int fd) {
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0) return {0, 0};
  return {ws.ws_col, ws.ws_row};
}

std::unique_ptr<Terminal> Terminal::open() {
  termios saved;
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0)
    throw util::FatalError("top needs a terminal on stdin and stdout; use --once or --json in scripts",
                           util::kExitUsage);
  if (g_wake[0] < 0 && pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) != 0)
    throw util::FatalError(std::string("pipe2: ") + std::strerror(errno));
  std::unique_ptr<Terminal> t(new Terminal(saved));
  t->enter();
  return t;
}

Terminal::Terminal(const termios& saved) : saved_(saved) {
  g_saved = saved;
  set_handler(SIGWINCH, on_winch);
  set_handler(SIGTSTP, on_tstp);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) set_handler(sig, on_fatal, SA_RESETHAND);
}

Terminal::~Terminal() {
  leave();
  set_handler(SIGWINCH, SIG_DFL);
  set_handler(SIGTSTP, SIG_DFL);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) set_handler(sig, SIG_DFL);
}

void Terminal::enter() {
  termios raw = saved_;
  // Keys arrive one by one and unechoed; ISIG stays on so Ctrl-C is SIGINT (the loop's stop
  // flag) and Ctrl-Z is SIGTSTP (suspend()).
  raw.c_lflag &= ~(ICANON | ECHO | IEXTEN);
  raw.c_iflag &= ~(IXON | ICRNL | INLCR | IGNCR);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
  g_active = true;
  write_all(kEnter);
  TerminalSize s = terminal_size(STDOUT_FILENO);
  size_ = s.width ? s : TerminalSize{};
  active_ = true;
}

void Terminal::leave() {
  if (!active_) return;
  write_all(kLeave);
  tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_);
  g_active = false;
  active_ = false;
}

bool Terminal::suspend_requested() {
  return g_suspend.exchange(false);
}

void Terminal::suspend() {
  leave();
  set_handler(SIGTSTP, SIG_DFL);
  raise(SIGTSTP);  // stops here until fg sends SIGCONT
  set_handler(SIGTSTP, on_tstp);
  enter();
}

void Terminal::write_all(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(STDOUT_FILENO, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the terminal is gone (SIGHUP follows); nothing better to do
    done += static_cast<size_t>(n);
  }
}

void Terminal::draw(const std::vector<std::string>& lines) {
  // Each row is addressed and cleared before it is written: clearing after text that fills
  // the last column would erase that column (the cursor stays on it).
  std::string frame = kBeginFrame;
  for (int row = 0; row < size_.height; ++row) {
    frame += "\x1b[" + std::to_string(row + 1) + ";1H\x1b[2K";
    if (static_cast<size_t>(row) < lines.size()) frame += lines[static_cast<size_t>(row)];
  }
  frame += kEndFrame;
  write_all(frame);
}

Key Terminal::read_key(std::chrono::milliseconds timeout) {
  auto parse = [this]() -> Key {
    if (pending_.empty()) return {};
    unsigned char c = static_cast<unsigned char>(pending_[0]);
    if (c != 0x1b) {
      pending_.erase(0, 1);
      if (c == '\r' || c == '\n') return {KeyCode::enter};
      if (c == 0x7f || c == 0x08) return {KeyCode::backspace};
      return {KeyCode::character, static_cast<char>(c)};
    }
    if (pending_.size() == 1) {
      pending_.clear();
      return {KeyCode::escape};
    }
    if (pending_[1] != '[' && pending_[1] != 'O') {  // Alt+key: take it as the key
      pending_.erase(0, 1);
      return {};
    }
    // CSI / SS3: parameters, then one final byte in 0x40-0x7e.
    size_t end = 2;
    while (end < pending_.size() && !(pending_[end] >= 0x40 && pending_[end] <= 0x7e)) ++end;
    if (end >= pending_.size()) {
      pending_.clear();  // a truncated sequence: drop it rather than misread its bytes as keys
      return {};
    }
    std::string seq = pending_.substr(0, end + 1);
    pending_.erase(0, end + 1);
    char final = seq.back();
    if (final == 'A') return {KeyCode::up};
    if (final == 'B') return {KeyCode::down};
    if (final == 'C') return {KeyCode::right};
    if (final == 'D') return {KeyCode::left};
    if (seq == "\x1b[5~") return {KeyCode::page_up};
    if (seq == "\x1b[6~") return {KeyCode::page_down};
    return {};
  };
  auto read_input = [this](int wait_ms) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) return false;
    char buf[256];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n > 0) pending_.append(buf, static_cast<size_t>(n));
    return n > 0;
  };

  if (!pending_.empty()) {
    // A lone ESC may be the start of a sequence still on its way.
    if (pending_ == "\x1b") read_input(30);
    return parse();
  }
  pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_wake[0], POLLIN, 0}};
  int r = poll(fds, 2, static_cast<int>(timeout.count()));
  if (r <= 0) return {};  // timeout, or EINTR from SIGINT/SIGTERM: the caller checks its flag
  if (fds[1].revents & POLLIN) {
    char buf[64];
    while (::read(g_wake[0], buf, sizeof(buf)) > 0) {
    }
  }
  if (g_resized.exchange(false)) {
    TerminalSize s = terminal_size(STDOUT_FILENO);
    if (s.width) size_ = s;
    return {KeyCode::resize};
  }
  if (fds[0].revents & (POLLHUP | POLLERR)) throw util::FatalError("the terminal went away");
  if (fds[0].revents & POLLIN) {
    char buf[256];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n == 0) throw util::FatalError("the terminal went away");
    if (n > 0) pending_.append(buf, static_cast<size_t>(n));
    if (pending_ == "\x1b") read_input(30);
    return parse();
  }
  return {};
}

}  // namespace netwatch::cli
