// The interactive terminal for `netwatch top`, with plain ANSI escapes and termios: raw input,
// the alternate screen, a hidden cursor, keys, the window size and SIGWINCH. One owner puts
// the terminal back as it found it -- on return, on exceptions and after SIGINT/SIGTERM (which
// only set a flag, so the loop unwinds normally). No terminfo: the few sequences used here are
// the same on every terminal emulator in use (xterm, VT100 and ECMA-48).
#pragma once

#include <termios.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace netwatch::cli {

struct TerminalSize {
  int width = 80;
  int height = 24;
};

enum class KeyCode { none, character, enter, escape, backspace, up, down, left, right, page_up, page_down, resize };

struct Key {
  KeyCode code = KeyCode::none;
  char ch = 0;  // KeyCode::character
};

// Whether colour should be used on `fd`: a terminal, NO_COLOR unset (no-color.org) and TERM
// not "dumb".
bool color_wanted(int fd);
// The size of the terminal on `fd`; nullopt-like {0,0} when it is not one.
TerminalSize terminal_size(int fd);

class Terminal {
 public:
  // Takes over stdin/stdout; throws FatalError(exit 2) when either is not a terminal.
  static std::unique_ptr<Terminal> open();
  ~Terminal();  // restores the saved termios, leaves the alternate screen, shows the cursor
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  TerminalSize size() const { return size_; }
  // Waits up to `timeout` for a key or a resize. KeyCode::none after the timeout or a signal.
  Key read_key(std::chrono::milliseconds timeout);
  // Replaces the screen with `lines` (each already fits the width).
  void draw(const std::vector<std::string>& lines);
  // Ctrl-Z: gives the terminal back, stops, and takes it again on SIGCONT. Called by the loop
  // when suspend_requested() says so.
  void suspend();
  static bool suspend_requested();

 private:
  Terminal(const termios& saved);
  void enter();
  void leave();
  void write_all(const std::string& bytes);

  termios saved_;
  bool active_ = false;
  TerminalSize size_;
  std::string pending_;  // bytes read but not yet turned into keys
};

}  // namespace netwatch::cli
