// What each key does to the view of `netwatch top`: a pure function of the view state and
// the key, so the unit tests drive it exactly as the terminal loop does.
#pragma once

#include <cstddef>

#include "cli/top/terminal.h"
#include "cli/top/render.h"

namespace netwatch::cli::top {

enum class KeyAction { none, redraw, refresh_now, quit };

// row_count: rows of the current view after the filter (bounds scrolling); page: rows per screen.
KeyAction apply_key(ViewState& state, const cli::Key& key, size_t row_count, size_t page);

}  // namespace netwatch::cli::top
