// Drawing `netwatch top` (btop's shape): a pure function of a snapshot, the view state and the
// terminal size. No I/O, no clock: the golden tests call it exactly as the terminal loop does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/top/model.h"

namespace netwatch::cli::top {

enum class View { connections, flows };

struct ViewState {
  View view = View::connections;
  size_t connection_sort = 0;   // index into connection_columns()
  size_t flow_sort = 0;         // index into flow_columns()
  bool reverse = false;         // against the column's first direction
  std::string filter;           // case-insensitive substring of any column's text
  bool editing_filter = false;  // the filter prompt is open; filter_draft is being typed
  std::string filter_draft;
  bool paused = false;
  uint64_t interval_ns = 1'000'000'000;
  bool help = false;
  size_t max_rows = 0;      // --rows; 0: as many as fit
  size_t scroll = 0;        // rows skipped at the top (up/down keys)
  int family = 0;           // --family, shown in the header (the rows are already filtered)
  bool interactive = true;  // false (--once): no key hints, no scrolling
  std::string source;       // "agent http://10.0.0.5:9464" or "standalone (tp_btf, ringbuf)"
  std::string notice;       // a problem worth a line, e.g. the agent stopped answering
};

// Defaults: connections sorted by RETRANS, flows by RETR%, both worst first.
ViewState default_view_state();

// The frame: at most `height` lines (0: as many as the rows need) of at most `width` visible
// characters (0: unlimited, for --once into a pipe), with ANSI SGR codes only when `color`.
// Columns that do not fit are dropped lowest priority first (the sort column never); text
// columns shrink to their minimum before they go; cells that still do not fit end in '~'.
std::vector<std::string> render(const TopSnapshot& snapshot, const ViewState& state, int width, int height, bool color);

// The rows of the current view after filter and sort, as the renderer orders them: the
// connection (or flow) indexes into the snapshot. Exposed for the tests.
std::vector<size_t> visible_rows(const TopSnapshot& snapshot, const ViewState& state);

// Text that fits `width` display columns: cut with a trailing '~' when longer.
std::string fit_text(const std::string& text, size_t width);

}  // namespace netwatch::cli::top
