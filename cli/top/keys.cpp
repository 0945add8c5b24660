#include "cli/top/keys.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "cli/top/columns.h"

namespace netwatch::cli::top {
namespace {

// What + and - step through.
constexpr uint64_t kIntervalSteps[] = {100'000'000,   250'000'000,    500'000'000,    1'000'000'000, 2'000'000'000,
                                       5'000'000'000, 10'000'000'000, 30'000'000'000, 60'000'000'000};

constexpr size_t kMaxFilter = 64;

KeyAction edit_filter(ViewState& s, const cli::Key& key) {
  switch (key.code) {
    case cli::KeyCode::enter:
      s.filter = s.filter_draft;
      s.editing_filter = false;
      s.scroll = 0;
      break;
    case cli::KeyCode::escape:
      s.editing_filter = false;
      break;
    case cli::KeyCode::backspace:
      if (!s.filter_draft.empty()) s.filter_draft.pop_back();
      break;
    case cli::KeyCode::character:
      if (static_cast<unsigned char>(key.ch) < 0x20 || s.filter_draft.size() >= kMaxFilter) return KeyAction::none;
      s.filter_draft += key.ch;
      break;
    default:
      return KeyAction::none;
  }
  return KeyAction::redraw;
}

KeyAction step_interval(ViewState& s, bool longer) {
  if (longer) {
    for (uint64_t v : kIntervalSteps)
      if (v > s.interval_ns) return s.interval_ns = v, KeyAction::refresh_now;
  } else {
    for (auto it = std::rbegin(kIntervalSteps); it != std::rend(kIntervalSteps); ++it)
      if (*it < s.interval_ns) return s.interval_ns = *it, KeyAction::refresh_now;
  }
  return KeyAction::none;
}

// The arrows and their letter twins: one meaning each.
char normalize(const cli::Key& key) {
  switch (key.code) {
    case cli::KeyCode::left:
      return '<';
    case cli::KeyCode::right:
      return '>';
    case cli::KeyCode::character:
      break;
    default:
      return 0;
  }
  switch (key.ch) {
    case ',':
      return '<';  // the unshifted keys, as htop accepts them
    case '.':
      return '>';
    case '=':
      return '+';
    case '_':
      return '-';
    case ' ':
      return 'p';
    case '?':
      return 'h';
    case 'Q':
      return 'q';
    default:
      return key.ch;
  }
}

}  // namespace

KeyAction apply_key(ViewState& s, const cli::Key& key, size_t row_count, size_t page) {
  if (key.code == cli::KeyCode::resize) return KeyAction::redraw;
  if (s.editing_filter) return edit_filter(s, key);
  char command = normalize(key);
  if (command == 'q') return KeyAction::quit;
  size_t last_row = row_count ? row_count - 1 : 0;
  if (s.help) {  // up/down scroll the help (the renderer stops at its end), any other key closes it
    if (key.code == cli::KeyCode::up)
      s.scroll = s.scroll ? s.scroll - 1 : 0;
    else if (key.code == cli::KeyCode::down)
      s.scroll = std::min<size_t>(s.scroll + 1, 60);
    else
      s.help = false, s.scroll = 0;
    return KeyAction::redraw;
  }
  switch (key.code) {
    case cli::KeyCode::up:
      s.scroll = s.scroll ? s.scroll - 1 : 0;
      return KeyAction::redraw;
    case cli::KeyCode::down:
      s.scroll = std::min(s.scroll + 1, last_row);
      return KeyAction::redraw;
    case cli::KeyCode::page_up:
      s.scroll = s.scroll > page ? s.scroll - page : 0;
      return KeyAction::redraw;
    case cli::KeyCode::page_down:
      s.scroll = std::min(s.scroll + page, last_row);
      return KeyAction::redraw;
    case cli::KeyCode::escape:  // drops an applied filter: the quickest way back to everything
      if (s.filter.empty()) return KeyAction::none;
      s.filter.clear();
      return KeyAction::redraw;
    default:
      break;
  }
  size_t& sort = s.view == View::connections ? s.connection_sort : s.flow_sort;
  size_t columns = s.view == View::connections ? connection_columns().size() : flow_columns().size();
  switch (command) {
    case '<':
    case '>':
      sort = (sort + (command == '<' ? columns - 1 : 1)) % columns;
      s.reverse = false;  // the new column starts in its own direction
      return KeyAction::redraw;
    case 'r':
      s.reverse = !s.reverse;
      return KeyAction::redraw;
    case '/':
      s.editing_filter = true;
      s.filter_draft = s.filter;
      return KeyAction::redraw;
    case 'f':
      s.view = s.view == View::connections ? View::flows : View::connections;
      s.scroll = 0;
      return KeyAction::redraw;
    case 'p':
      s.paused = !s.paused;
      return s.paused ? KeyAction::redraw : KeyAction::refresh_now;
    case '+':
      return step_interval(s, true);
    case '-':
      return step_interval(s, false);
    case 'h':
      s.help = true, s.scroll = 0;
      return KeyAction::redraw;
    default:
      return KeyAction::none;
  }
}

}  // namespace netwatch::cli::top
