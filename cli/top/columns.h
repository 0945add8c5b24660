// The columns of `netwatch top`, one table per view (htop's shape): everything the renderer,
// the sort keys, the filter and the help screen know about a column is its row here, so adding
// a column is adding one row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/top/model.h"

namespace netwatch::cli::top {

enum class Align : uint8_t { left, right };
// How a cell draws the eye: dim (nothing known yet), warn (worth a look), bad (this is it).
enum class Tone : uint8_t { normal, dim, warn, bad };

template <class Row>
struct Column {
  std::string_view key;    // --sort name, lower case ("retrans")
  std::string_view title;  // header text ("RETRANS")
  int width;               // numbers (right-aligned): always this wide; text: fits its content up to this,
                           // and grows past it (to the whole text) only into room the other columns leave
  int min_width;           // text: narrowest it is cut to ('~') before lower-priority columns are dropped
  int priority;            // when the terminal is narrow, lower priorities go first
  Align align;
  bool descending;                             // first sort direction: the biggest numbers first
  bool hide_when_empty;                        // pod labels: hidden unless some row has them
  std::string_view description;                // the help screen
  std::string (*format)(const Row& row);       // the cell text; the filter matches it too
  int (*compare)(const Row& a, const Row& b);  // <0, 0, >0 in ascending order
  Tone (*tone)(const Row& row);                // nullptr: always normal
  bool elide_middle = false;                   // addresses: a cut keeps the port at the end ("[2001:db8:~:1]:443")
};

using ConnectionColumn = Column<TopConnection>;
using FlowColumn = Column<TopFlow>;

const std::vector<ConnectionColumn>& connection_columns();
const std::vector<FlowColumn>& flow_columns();

// The index of the column whose key or title is `name` (case-insensitive); nullopt if none.
template <class Row>
std::optional<size_t> find_column(const std::vector<Column<Row>>& columns, std::string_view name);

// Cell formats, shared by both tables (and tested on their own).
std::string format_duration_us(double us);                   // "-" for 0; "45us", "1.23ms", "250ms", "1.20s"
std::string format_seconds(double s);                        // durations given in seconds, as format_duration_us
std::string format_age(double s);                            // "45s", "12m03s", "3h05m", "2d04h"
std::string format_count(uint64_t n);                        // "123", "1234567", "12.3M"
std::string format_percent(double ratio);                    // 0.0033 -> "0.33"; 0 -> "0"
std::string format_rate(std::optional<double> bytes_per_s);  // "-", "512", "12.3K", "4.5M"
std::string format_state(std::string_view agent_state);      // ss's names: "ESTAB", "SYN-SENT"
std::string format_endpoint(const std::string& address, uint16_t port);  // "[::1]:443"

}  // namespace netwatch::cli::top
