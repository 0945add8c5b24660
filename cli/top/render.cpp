#include "cli/top/render.h"

#include <algorithm>
#include <climits>
#include <ctime>
#include <string_view>

#include "cli/top/columns.h"

namespace netwatch::cli::top {
namespace {

constexpr const char* kReset = "\x1b[0m";
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kDim = "\x1b[2m";
constexpr const char* kWarn = "\x1b[33m";
constexpr const char* kBad = "\x1b[1;31m";
constexpr const char* kHeaderBar = "\x1b[7m";        // reverse video: readable on any theme
constexpr const char* kSortTitle = "\x1b[1;30;46m";  // black on cyan, like htop's sort column
constexpr const char* kKey = "\x1b[1;36m";

const char* tone_sgr(Tone t) {
  switch (t) {
    case Tone::dim:
      return kDim;
    case Tone::warn:
      return kWarn;
    case Tone::bad:
      return kBad;
    case Tone::normal:
      break;
  }
  return nullptr;
}

// Text from the kernel or the network (comm, pod names) must not reach the terminal as
// control sequences, and every character must be one column wide for the table to line up.
std::string sanitize(std::string_view text) {
  std::string out(text);
  for (char& ch : out) {
    auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u >= 0x7f) ch = '?';
  }
  return out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// One output line: at most `limit` visible characters (0: unlimited), SGR codes only in colour.
// Neighbouring pieces in the same style share one escape sequence.
class Line {
 public:
  Line(bool color, size_t limit) : color_(color), limit_(limit) {}

  Line& add(std::string_view text, const char* sgr = nullptr) {
    if (limit_ && used_ + text.size() > limit_) text = text.substr(0, limit_ - used_);
    if (text.empty()) return *this;
    if (color_ && sgr != open_) {
      if (open_) out_ += kReset;
      if (sgr) out_ += sgr;
      open_ = sgr;
    }
    out_ += text;
    used_ += text.size();
    return *this;
  }
  Line& pad_to(size_t column, const char* sgr = nullptr) {
    if (column > used_) add(std::string(column - used_, ' '), sgr);
    return *this;
  }
  size_t used() const { return used_; }
  std::string str() && {
    if (open_) out_ += kReset;
    open_ = nullptr;
    return std::move(out_);
  }

 private:
  bool color_;
  size_t limit_;
  std::string out_;
  size_t used_ = 0;
  const char* open_ = nullptr;  // the style in effect at the end of out_
};

std::string cell_text(const std::string& text, size_t width, Align align, bool elide_middle) {
  if (text.size() > width) {
    if (width == 0) return {};
    if (!elide_middle || width < 5) return fit_text(text, width);
    size_t tail = (width - 1) / 2 + (width - 1) % 2, head = width - 1 - tail;
    return text.substr(0, head) + "~" + text.substr(text.size() - tail);
  }
  std::string pad(width - text.size(), ' ');
  return align == Align::right ? pad + text : text + pad;
}

std::string clock_text(uint64_t ts_ns) {
  if (ts_ns == 0) return "--:--:-- UTC";
  time_t seconds = static_cast<time_t>(ts_ns / 1'000'000'000ULL);
  tm t{};
  gmtime_r(&seconds, &t);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%H:%M:%S UTC", &t);
  return buf;
}

std::string interval_text(uint64_t ns) {
  if (ns % 1'000'000'000ULL == 0) return std::to_string(ns / 1'000'000'000ULL) + "s";
  return std::to_string(ns / 1'000'000) + "ms";
}

template <class Row>
const std::vector<Row>& rows_of(const TopSnapshot& s);
template <>
const std::vector<TopConnection>& rows_of(const TopSnapshot& s) {
  return s.connections;
}
template <>
const std::vector<TopFlow>& rows_of(const TopSnapshot& s) {
  return s.flows;
}

template <class Row>
const std::vector<Column<Row>>& table_of();
template <>
const std::vector<ConnectionColumn>& table_of() {
  return connection_columns();
}
template <>
const std::vector<FlowColumn>& table_of() {
  return flow_columns();
}

template <class Row>
size_t sort_of(const ViewState& state) {
  size_t i = std::is_same_v<Row, TopConnection> ? state.connection_sort : state.flow_sort;
  return std::min(i, table_of<Row>().size() - 1);
}

template <class Row>
std::vector<size_t> ordered(const TopSnapshot& snapshot, const ViewState& state) {
  const auto& rows = rows_of<Row>(snapshot);
  const auto& table = table_of<Row>();
  std::vector<size_t> out;
  std::string needle = lower(state.filter);
  for (size_t i = 0; i < rows.size(); ++i) {
    bool match = needle.empty();
    for (size_t c = 0; !match && c < table.size(); ++c)
      match = lower(table[c].format(rows[i])).find(needle) != std::string::npos;
    if (match) out.push_back(i);
  }
  const Column<Row>& key = table[sort_of<Row>(state)];
  bool descending = key.descending != state.reverse;
  // Stable: ties keep the snapshot's order (most recently active first).
  std::stable_sort(out.begin(), out.end(), [&](size_t a, size_t b) {
    int r = key.compare(rows[a], rows[b]);
    return descending ? r > 0 : r < 0;
  });
  return out;
}

struct Layout {
  std::vector<size_t> columns;  // indexes into the table, in table order
  std::vector<size_t> widths;
};

// Which columns fit `width` (0: no limit), and how wide. Columns are dropped lowest priority
// first (never the sort column) until the rest fit at their minimum widths; then text columns
// shrink, lowest priority first, just enough. Room left over brings back dropped columns that
// fit whole, then lets text columns grow to their whole text (a long IPv6 address), highest
// priority first.
template <class Row>
Layout layout(const std::vector<Column<Row>>& table, const std::vector<std::vector<std::string>>& cells,
              size_t sort_column, size_t width) {
  const size_t n = table.size();
  std::vector<size_t> natural(n, 0), minimum(n, 0), whole(n, 0);
  std::vector<bool> shown(n, false);
  for (size_t c = 0; c < n; ++c) {
    const Column<Row>& col = table[c];
    size_t content = 0;
    for (const auto& row : cells) content = std::max(content, row[c].size());
    if (col.hide_when_empty && content == 0) continue;
    shown[c] = true;
    size_t title = col.title.size(), cap = std::max<size_t>(col.width, title);
    // Numbers keep their width so they do not jump between refreshes; text fits its content.
    bool fixed = col.align == Align::right;
    natural[c] = fixed ? cap : std::clamp(content, title, cap);
    minimum[c] = fixed ? cap : std::max(title, std::min<size_t>(col.min_width, natural[c]));
    whole[c] = fixed ? cap : std::max(title, content);
  }
  auto total = [&](const std::vector<size_t>& w) {
    size_t sum = 0, count = 0;
    for (size_t c = 0; c < n; ++c)
      if (shown[c]) sum += w[c], ++count;
    return count ? sum + count - 1 : 0;
  };
  if (!width) {
    Layout out;
    for (size_t c = 0; c < n; ++c)
      if (shown[c]) out.columns.push_back(c), out.widths.push_back(whole[c]);
    return out;
  }
  std::vector<size_t> by_priority;
  for (size_t c = 0; c < n; ++c)
    if (shown[c]) by_priority.push_back(c);
  auto priority = [&](size_t c) { return c == sort_column ? INT_MAX : table[c].priority; };
  std::stable_sort(by_priority.begin(), by_priority.end(),
                   [&](size_t a, size_t b) { return priority(a) < priority(b); });

  size_t left = by_priority.size();
  for (size_t c : by_priority) {
    if (total(minimum) <= width || left <= 1 || c == sort_column) break;
    shown[c] = false;
    --left;
  }
  std::vector<size_t> current = natural;
  for (size_t c : by_priority) {
    size_t t = total(current);
    if (t <= width) break;
    if (shown[c]) current[c] -= std::min(t - width, current[c] - minimum[c]);
  }
  // A dropped column that fits whole in what the drops freed comes back (highest priority first).
  for (auto it = by_priority.rbegin(); it != by_priority.rend(); ++it) {
    if (shown[*it] || total(current) + 1 + natural[*it] > width) continue;
    shown[*it] = true;
  }
  for (auto it = by_priority.rbegin(); it != by_priority.rend(); ++it) {
    size_t t = total(current);
    if (t >= width) break;
    if (shown[*it] && whole[*it] > current[*it]) current[*it] += std::min(width - t, whole[*it] - current[*it]);
  }
  Layout out;
  for (size_t c = 0; c < n; ++c)
    if (shown[c]) out.columns.push_back(c), out.widths.push_back(current[c]);
  return out;
}

std::string title_line(const TopSnapshot& s, const ViewState& state, size_t width, bool color) {
  std::string left = "netwatch top  " + sanitize(state.source);
  std::string clock = clock_text(s.ts_ns);
  std::string right = state.interactive ? clock + "  every " + interval_text(state.interval_ns) : clock;
  size_t paused = state.paused ? 8 : 0;
  // Narrow terminals lose the interval first, then the clock; the source is clipped last.
  if (width && left.size() + 2 + right.size() + paused > width) right = clock;
  if (width && left.size() + 2 + right.size() + paused > width) right.clear();
  Line line(color, width);
  line.add(left, kBold);
  if (!right.empty()) {
    size_t gap =
        width && line.used() + 2 + right.size() + paused <= width ? width - line.used() - right.size() - paused : 2;
    line.add(std::string(gap, ' ')).add(right);
  }
  if (state.paused) line.add("  ").add("PAUSED", kBad);
  return std::move(line).str();
}

template <class Row>
std::string status_line(const TopSnapshot& s, const ViewState& state, size_t matching, size_t first, size_t shown,
                        size_t width, bool color) {
  std::string noun = std::is_same_v<Row, TopConnection> ? " connection" : " flow";
  Line line(color, width);
  line.add(std::to_string(matching) + noun + (matching == 1 ? "" : "s"), kBold);
  if (shown < matching)
    line.add(" (" + std::to_string(shown ? first + 1 : 0) + "-" + std::to_string(first + shown) + " shown)");
  const auto& key = table_of<Row>()[sort_of<Row>(state)];
  bool descending = key.descending != state.reverse;
  line.add("  sort ").add(key.title, kBold).add(descending ? " desc" : " asc");
  if (!state.filter.empty()) line.add("  filter \"").add(sanitize(state.filter), kBold).add("\"");
  if (state.family) line.add("  IPv" + std::to_string(state.family) + " only");
  if (std::is_same_v<Row, TopConnection> && s.connections_truncated)
    line.add("  agent listed " + std::to_string(s.connections.size()) + " of " + std::to_string(s.connections_total),
             kWarn);
  if (s.events_lost) line.add("  " + std::to_string(s.events_lost) + " events lost", kBad);
  if (s.series_budget_stage)
    line.add("  flows folded (series budget stage " + std::to_string(s.series_budget_stage) + ")", kWarn);
  return std::move(line).str();
}

std::string footer_line(const ViewState& state, size_t width, bool color) {
  Line line(color, width);
  if (state.editing_filter) {
    line.add("filter: ", kBold).add(sanitize(state.filter_draft)).add("_", kKey);
    line.add("   ").add("Enter", kKey).add(" apply  ").add("Esc", kKey).add(" cancel");
    return std::move(line).str();
  }
  if (state.help) {
    line.add("up/down", kKey).add(" scroll  ").add("any other key", kKey).add(" closes this help");
    return std::move(line).str();
  }
  const std::pair<const char*, const char*> hints[] = {{"q", "quit"},
                                                       {"<>", "sort"},
                                                       {"r", "reverse"},
                                                       {"/", "filter"},
                                                       {"f", state.view == View::connections ? "flows" : "conns"},
                                                       {"p", state.paused ? "resume" : "pause"},
                                                       {"+-", "interval"},
                                                       {"h", "help"}};
  bool first = true;
  for (const auto& [key, what] : hints) {
    if (!first) line.add("  ");
    first = false;
    line.add(key, kKey).add(" ").add(what);
  }
  return std::move(line).str();
}

// "  KEY   text" with the text wrapped under itself at `width`.
void add_wrapped(std::vector<std::string>& out, std::string_view key, std::string_view extra, std::string_view text,
                 size_t indent, size_t width, bool color) {
  Line first(color, width);
  first.add("  ").add(key, kKey);
  if (!extra.empty()) first.pad_to(16).add(extra);
  first.pad_to(indent);
  size_t room = width && width > indent + 10 ? width - indent : std::string_view::npos;
  bool first_line = true;
  while (first_line || !text.empty()) {
    std::string_view piece = text;
    if (piece.size() > room) {
      size_t cut = piece.rfind(' ', room);
      piece = piece.substr(0, cut == std::string_view::npos || cut == 0 ? room : cut);
    }
    text.remove_prefix(std::min(text.size(), piece.size()));
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (first_line) {
      first.add(piece);
      out.push_back(std::move(first).str());
      first_line = false;
    } else {
      out.push_back(std::move(Line(color, width).pad_to(indent).add(piece)).str());
    }
  }
}

template <class Row>
std::vector<std::string> help_lines(size_t width, bool color) {
  static const std::pair<const char*, const char*> keys[] = {
      {"q", "quit (Ctrl-C too)"},
      {"< > left right", "sort by the previous / next column"},
      {"r", "reverse the sort"},
      {"/", "filter: type text, Enter applies, Esc cancels (Esc again clears); matches any column"},
      {"f", "switch between connections and flows (peer:port)"},
      {"p", "pause refreshing; keys still sort and filter the frozen data"},
      {"+ -", "refresh less / more often"},
      {"up down", "scroll"},
      {"h", "this help"},
  };
  std::vector<std::string> out;
  out.push_back(std::move(Line(color, width).add("Keys", kBold)).str());
  for (const auto& [key, what] : keys) add_wrapped(out, key, "", what, 20, width, color);
  out.emplace_back();
  bool connections = std::is_same_v<Row, TopConnection>;
  out.push_back(std::move(Line(color, width)
                              .add(connections ? "Connection columns" : "Flow columns", kBold)
                              .add("  (title, --sort key, meaning)"))
                    .str());
  for (const auto& col : table_of<Row>()) add_wrapped(out, col.title, col.key, col.description, 29, width, color);
  return out;
}

template <class Row>
std::vector<std::string> render_view(const TopSnapshot& s, const ViewState& state, size_t width, size_t height,
                                     bool color) {
  const auto& rows = rows_of<Row>(s);
  const auto& table = table_of<Row>();
  std::vector<size_t> order = ordered<Row>(s, state);

  // title, status, [notice], column titles, rows..., [footer]
  size_t fixed = 3 + (state.notice.empty() ? 0 : 1) + (state.interactive ? 1 : 0);
  size_t room = height ? (height > fixed ? height - fixed : 0) : order.size();
  if (state.max_rows) room = std::min(room, state.max_rows);
  size_t first = state.interactive ? std::min(state.scroll, order.size() > room ? order.size() - room : 0) : 0;
  size_t shown = std::min(room, order.size() - first);

  std::vector<std::vector<std::string>> cells(shown, std::vector<std::string>(table.size()));
  for (size_t r = 0; r < shown; ++r)
    for (size_t c = 0; c < table.size(); ++c) cells[r][c] = sanitize(table[c].format(rows[order[first + r]]));
  size_t sort_column = sort_of<Row>(state);
  Layout lay = layout(table, cells, sort_column, width);

  std::vector<std::string> out;
  out.push_back(title_line(s, state, width, color));
  out.push_back(status_line<Row>(s, state, order.size(), first, shown, width, color));
  if (!state.notice.empty()) out.push_back(std::move(Line(color, width).add(sanitize(state.notice), kBad)).str());

  if (state.help && state.interactive) {
    std::vector<std::string> help = help_lines<Row>(width, color);
    size_t fits = height ? (height > out.size() + 1 ? height - out.size() - 1 : 0) : help.size();
    size_t skip = std::min(state.scroll, help.size() > fits ? help.size() - fits : 0);
    for (size_t i = skip; i < help.size(); ++i) out.push_back(std::move(help[i]));
  } else {
    Line titles(color, width);
    for (size_t i = 0; i < lay.columns.size(); ++i) {
      const auto& col = table[lay.columns[i]];
      if (i) titles.add(" ", kHeaderBar);
      std::string text = cell_text(std::string(col.title), lay.widths[i], col.align, false);
      titles.add(text, lay.columns[i] == sort_column ? kSortTitle : kHeaderBar);
    }
    if (color && width) titles.pad_to(width, kHeaderBar);
    std::string title_text = std::move(titles).str();
    if (!color) title_text.erase(title_text.find_last_not_of(' ') + 1);
    out.push_back(std::move(title_text));

    for (size_t r = 0; r < shown; ++r) {
      Line line(color, width);
      const Row& row = rows[order[first + r]];
      for (size_t i = 0; i < lay.columns.size(); ++i) {
        const auto& col = table[lay.columns[i]];
        if (i) line.add(" ");
        Tone tone = col.tone ? col.tone(row) : Tone::normal;
        line.add(cell_text(cells[r][lay.columns[i]], lay.widths[i], col.align, col.elide_middle), tone_sgr(tone));
      }
      std::string text = std::move(line).str();
      // Right-aligned last columns leave no trailing spaces; left-aligned ones would.
      if (!color) text.erase(text.find_last_not_of(' ') + 1);
      out.push_back(std::move(text));
    }
    if (order.empty()) {
      const char* noun = std::is_same_v<Row, TopConnection> ? "connections" : "flows";
      std::string why = !state.filter.empty() ? std::string("no ") + noun + " match the filter"
                        : rows.empty()        ? std::string("no ") + noun + " seen yet: waiting for TCP traffic"
                                              : std::string("no ") + noun;
      out.push_back(std::move(Line(color, width).add("  " + why, kDim)).str());
    }
  }

  if (state.interactive) {
    if (height) {
      if (out.size() + 1 > height) out.resize(height > 0 ? height - 1 : 0);
      while (out.size() + 1 < height) out.emplace_back();
    }
    out.push_back(footer_line(state, width, color));
  }
  if (height && out.size() > height) out.resize(height);
  return out;
}

}  // namespace

std::string fit_text(const std::string& text, size_t width) {
  if (text.size() <= width) return text + std::string(width - text.size(), ' ');
  if (width == 0) return {};
  return text.substr(0, width - 1) + "~";
}

ViewState default_view_state() {
  ViewState s;
  s.connection_sort = *find_column(connection_columns(), "retrans");
  s.flow_sort = *find_column(flow_columns(), "retrans%");
  return s;
}

std::vector<size_t> visible_rows(const TopSnapshot& snapshot, const ViewState& state) {
  return state.view == View::connections ? ordered<TopConnection>(snapshot, state) : ordered<TopFlow>(snapshot, state);
}

std::vector<std::string> render(const TopSnapshot& snapshot, const ViewState& state, int width, int height,
                                bool color) {
  size_t w = width > 0 ? size_t(width) : 0, h = height > 0 ? size_t(height) : 0;
  return state.view == View::connections ? render_view<TopConnection>(snapshot, state, w, h, color)
                                         : render_view<TopFlow>(snapshot, state, w, h, color);
}

}  // namespace netwatch::cli::top
