// `netwatch top` without a terminal: the snapshot parser, rates, the column table, keys, and
// render() compared with golden text files.
//
// The goldens are tests/data/top/*.txt. After an intended change to the view, regenerate them
// and review the diff:
//   NW_UPDATE_GOLDEN=1 build/tests/netwatch_unit_tests --gtest_filter='TopGolden.*'
#include "cli/top/render.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "serve/snapshot_json.h"
#include "cli/top/columns.h"
#include "cli/top/keys.h"
#include "cli/top/model.h"

namespace netwatch::cli::top {
namespace {

std::string data_path(const std::string& name) {
  return std::string(NW_TEST_DATA_DIR) + "/top/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TopSnapshot load(const std::string& name) {
  return parse_snapshot(read_file(data_path(name)));
}

// The view an SRE sees a second after starting: the second snapshot with rates from the first.
TopSnapshot after_with_rates() {
  TopSnapshot after = load("after.json");
  apply_rates(after, load("before.json"));
  return after;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

void expect_golden(const std::string& name, const std::vector<std::string>& lines) {
  std::string path = data_path(name), got = join(lines);
  const char* update = std::getenv("NW_UPDATE_GOLDEN");
  if (update && *update && std::string(update) != "0") {
    std::ofstream(path, std::ios::binary) << got;
    return;
  }
  std::ifstream probe(path);
  ASSERT_TRUE(probe.good()) << path << " is missing; run with NW_UPDATE_GOLDEN=1 to create it";
  EXPECT_EQ(got, read_file(path)) << "render differs from " << path
                                  << "; if the change is intended, regenerate with NW_UPDATE_GOLDEN=1";
}

ViewState state_for(View view) {
  ViewState s = default_view_state();
  s.view = view;
  s.source = "agent http://10.0.0.5:9464";
  return s;
}

size_t column_index(View view, const char* key) {
  auto i = view == View::connections ? find_column(connection_columns(), key) : find_column(flow_columns(), key);
  EXPECT_TRUE(i.has_value()) << key;
  return i.value_or(0);
}

// The remote endpoints of the rendered connection rows, top to bottom.
std::vector<std::string> remotes_in_order(const TopSnapshot& s, const ViewState& state) {
  std::vector<std::string> out;
  for (size_t i : visible_rows(s, state))
    out.push_back(format_endpoint(s.connections[i].remote, s.connections[i].remote_port));
  return out;
}

bool has_escape(const std::vector<std::string>& lines) {
  for (const std::string& l : lines)
    if (l.find('\x1b') != std::string::npos) return true;
  return false;
}

// Visible width of a line: escape sequences take no columns.
size_t visible_width(const std::string& line) {
  size_t n = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\x1b') {
      while (i < line.size() && line[i] != 'm') ++i;
      continue;
    }
    ++n;
  }
  return n;
}

// ---- golden frames ----

TEST(TopGolden, connections_80x24) {
  expect_golden("connections_80x24.txt", render(after_with_rates(), state_for(View::connections), 80, 24, false));
}

TEST(TopGolden, connections_160x40) {
  expect_golden("connections_160x40.txt", render(after_with_rates(), state_for(View::connections), 160, 40, false));
}

TEST(TopGolden, flows_80x24) {
  expect_golden("flows_80x24.txt", render(after_with_rates(), state_for(View::flows), 80, 24, false));
}

TEST(TopGolden, flows_160x40) {
  expect_golden("flows_160x40.txt", render(after_with_rates(), state_for(View::flows), 160, 40, false));
}

TEST(TopGolden, pods_and_warnings_160x40) {
  expect_golden("pods_160x40.txt", render(load("pods.json"), state_for(View::connections), 160, 40, false));
}

TEST(TopGolden, narrow_50x12_shrinks_and_drops_columns) {
  expect_golden("connections_50x12.txt", render(after_with_rates(), state_for(View::connections), 50, 12, false));
}

TEST(TopGolden, help_80x24) {
  ViewState s = state_for(View::connections);
  s.help = true;
  expect_golden("help_80x24.txt", render(after_with_rates(), s, 80, 24, false));
}

TEST(TopGolden, colour_80x24) {
  expect_golden("connections_80x24_colour.txt", render(after_with_rates(), state_for(View::connections), 80, 24, true));
}

TEST(TopGolden, once_is_every_column_without_key_hints) {
  ViewState s = state_for(View::connections);
  s.interactive = false;
  expect_golden("connections_once.txt", render(after_with_rates(), s, 0, 0, false));
}

// ---- sorting ----

TEST(TopSort, retrans_puts_the_lossy_row_first) {
  TopSnapshot s = after_with_rates();
  ViewState state = state_for(View::connections);
  state.connection_sort = column_index(View::connections, "retrans");
  auto order = remotes_in_order(s, state);
  ASSERT_EQ(order.size(), 7u);
  EXPECT_EQ(order[0], "10.0.0.12:5432");   // 37 retransmits
  EXPECT_EQ(order[1], "10.0.0.33:51812");  // 2
  EXPECT_EQ(order[2], "10.0.0.77:9092");   // 1
}

TEST(TopSort, reverse_flips_the_order) {
  TopSnapshot s = after_with_rates();
  ViewState state = state_for(View::connections);
  state.connection_sort = column_index(View::connections, "rtt");
  auto worst_first = remotes_in_order(s, state);
  EXPECT_EQ(worst_first.front(), "[2001:db8:4:1::2a]:8443");  // 310ms
  state.reverse = true;
  auto best_first = remotes_in_order(s, state);
  EXPECT_EQ(best_first.front(), "10.0.0.77:9092");  // no sample yet: 0
  EXPECT_EQ(best_first.back(), "[2001:db8:4:1::2a]:8443");
  std::vector<std::string> lines = render(s, state, 160, 40, false);
  EXPECT_NE(lines[1].find("sort RTT asc"), std::string::npos) << lines[1];
}

TEST(TopSort, text_columns_sort_ascending_first) {
  TopSnapshot s = after_with_rates();
  ViewState state = state_for(View::connections);
  state.connection_sort = column_index(View::connections, "comm");
  std::vector<std::string> comms;
  for (size_t i : visible_rows(s, state)) comms.push_back(s.connections[i].comm);
  EXPECT_TRUE(std::is_sorted(comms.begin(), comms.end()));
}

TEST(TopSort, flows_by_failed_connects) {
  TopSnapshot s = after_with_rates();
  ViewState state = state_for(View::flows);
  state.flow_sort = column_index(View::flows, "refused");
  auto rows = visible_rows(s, state);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(s.flows[rows[0]].peer, "10.0.0.77");
}

// ---- filtering ----

TEST(TopFilter, matches_any_column_case_insensitively) {
  TopSnapshot s = after_with_rates();
  ViewState state = state_for(View::connections);
  auto only = [&](const std::string& filter) {
    state.filter = filter;
    return remotes_in_order(s, state);
  };
  EXPECT_EQ(only("PYTHON"), std::vector<std::string>{"10.0.0.12:5432"});        // COMM
  EXPECT_EQ(only(":9092"), std::vector<std::string>{"10.0.0.77:9092"});         // REMOTE
  EXPECT_EQ(only("syn-sent"), std::vector<std::string>{"10.0.0.77:9092"});      // STATE, as shown
  EXPECT_EQ(only("2d04h"), std::vector<std::string>{"10.96.0.1:443"});          // AGE, as shown
  EXPECT_EQ(only("45.2ms"), std::vector<std::string>{"10.0.0.12:5432"});        // RTT, as shown
  EXPECT_EQ(only("db8"), std::vector<std::string>{"[2001:db8:4:1::2a]:8443"});  // LOCAL and REMOTE
  EXPECT_TRUE(only("no such thing").empty());
}

TEST(TopFilter, matches_columns_a_narrow_terminal_hides) {
  TopSnapshot s = after_with_rates();
  ViewState state = state_for(View::connections);
  state.filter = "close-wait";  // STATE is not on screen at 60 columns
  std::vector<std::string> lines = render(s, state, 60, 24, false);
  EXPECT_EQ(lines[2].find("STATE"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("1290 kube-contr~"), std::string::npos) << lines[3];
  EXPECT_NE(lines[1].find("1 connection "), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("filter \"close-wait\""), std::string::npos) << lines[1];
}

TEST(TopFilter, says_so_when_nothing_matches) {
  ViewState state = state_for(View::flows);
  state.filter = "nothing here";
  std::vector<std::string> lines = render(after_with_rates(), state, 80, 24, false);
  EXPECT_NE(lines[3].find("no flows match the filter"), std::string::npos) << lines[3];
}

// ---- layout ----

TEST(TopLayout, every_frame_fits_its_terminal) {
  TopSnapshot s = after_with_rates();
  for (View view : {View::connections, View::flows})
    for (bool color : {false, true})
      for (int w = 1; w <= 200; w += 7)
        for (int h = 1; h <= 45; h += 4) {
          std::vector<std::string> lines = render(s, state_for(view), w, h, color);
          EXPECT_LE(lines.size(), size_t(h)) << w << "x" << h;
          if (h >= 5) {
            EXPECT_EQ(lines.size(), size_t(h)) << "the footer belongs on the last line";
          }
          for (const std::string& l : lines) EXPECT_LE(visible_width(l), size_t(w)) << w << "x" << h << ": " << l;
          EXPECT_EQ(has_escape(lines), color);
        }
}

TEST(TopLayout, narrow_terminals_keep_the_sort_column) {
  ViewState state = state_for(View::connections);
  state.connection_sort = column_index(View::connections, "rttvar");  // the first to go otherwise
  std::vector<std::string> lines = render(after_with_rates(), state, 60, 24, false);
  EXPECT_NE(lines[2].find("RTTVAR"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[2].find("CONNECT"), std::string::npos) << lines[2];
}

TEST(TopLayout, eighty_columns_keep_what_matters) {
  std::vector<std::string> lines = render(after_with_rates(), state_for(View::connections), 80, 24, false);
  for (const char* title : {"PID", "COMM", "REMOTE", "RTT", "RETRANS", "RETR%", "TX/s", "RX/s"})
    EXPECT_NE(lines[2].find(title), std::string::npos) << title << " missing from: " << lines[2];
}

TEST(TopLayout, cut_addresses_keep_their_port) {
  std::vector<std::string> lines = render(after_with_rates(), state_for(View::connections), 80, 24, false);
  bool found = false;
  for (const std::string& l : lines)
    if (l.find("redis-cli") != std::string::npos) {
      found = true;
      EXPECT_NE(l.find("~"), std::string::npos) << l;
      EXPECT_NE(l.find(":1]:6379"), std::string::npos) << l;
    }
  EXPECT_TRUE(found);
}

TEST(TopLayout, pod_column_only_when_some_row_has_one) {
  std::vector<std::string> host = render(after_with_rates(), state_for(View::connections), 200, 40, false);
  EXPECT_EQ(host[2].find("NAMESPACE/POD"), std::string::npos);
  std::vector<std::string> pods = render(load("pods.json"), state_for(View::connections), 200, 40, false);
  EXPECT_NE(pods[2].find("NAMESPACE/POD"), std::string::npos);
  EXPECT_NE(join(pods).find("shop/checkout-7d9f8b6c5d-x2x7q"), std::string::npos);
}

TEST(TopLayout, rows_limit_and_scroll_say_what_is_shown) {
  ViewState state = state_for(View::connections);
  state.max_rows = 2;
  std::vector<std::string> lines = render(after_with_rates(), state, 160, 40, false);
  EXPECT_NE(lines[1].find("7 connections (1-2 shown)"), std::string::npos) << lines[1];
  state.max_rows = 0;
  state.scroll = 5;
  lines = render(after_with_rates(), state, 160, 8, false);  // 4 rows fit: scrolling stops at the last
  EXPECT_NE(lines[1].find("(4-7 shown)"), std::string::npos) << lines[1];
}

TEST(TopLayout, kernel_text_cannot_reach_the_terminal_as_escapes) {
  TopSnapshot s = after_with_rates();
  s.connections[0].comm = "evil\x1b]0;pwned\x07";
  std::vector<std::string> lines = render(s, state_for(View::connections), 160, 40, false);
  EXPECT_FALSE(has_escape(lines));
  EXPECT_NE(join(lines).find("evil?]0;pwned?"), std::string::npos);
}

TEST(TopLayout, notice_and_pause_are_visible) {
  ViewState state = state_for(View::connections);
  state.paused = true;
  state.notice = "cannot reach agent at http://10.0.0.5:9464: Connection refused; retrying";
  std::vector<std::string> lines = render(after_with_rates(), state, 80, 24, false);
  EXPECT_NE(lines[0].find("PAUSED"), std::string::npos) << lines[0];
  EXPECT_NE(lines[2].find("cannot reach agent"), std::string::npos) << lines[2];
  EXPECT_EQ(lines.size(), 24u);
}

TEST(TopLayout, filter_prompt_replaces_the_key_hints) {
  ViewState state = state_for(View::connections);
  state.editing_filter = true;
  state.filter_draft = "543";
  std::vector<std::string> lines = render(after_with_rates(), state, 80, 24, false);
  EXPECT_EQ(lines.back().rfind("filter: 543_", 0), 0u) << lines.back();
}

// ---- the model ----

TEST(TopModel, rates_come_from_two_snapshots) {
  TopSnapshot after = after_with_rates();  // one second apart
  auto by_cookie = [&](uint64_t cookie) -> const TopConnection& {
    for (const TopConnection& c : after.connections)
      if (c.cookie == cookie) return c;
    throw std::runtime_error("no cookie");
  };
  EXPECT_DOUBLE_EQ(*by_cookie(101).tx_rate, 20000.0);
  EXPECT_DOUBLE_EQ(*by_cookie(101).rx_rate, 1400000.0);
  EXPECT_DOUBLE_EQ(*by_cookie(102).tx_rate, 512000.0);
  EXPECT_DOUBLE_EQ(*by_cookie(106).tx_rate, 0.0);
  EXPECT_FALSE(by_cookie(105).tx_rate.has_value()) << "new since the previous snapshot: unknown, not zero";
  EXPECT_EQ(format_rate(by_cookie(102).tx_rate), "500K");
  EXPECT_EQ(format_rate(by_cookie(101).rx_rate), "1.3M");
}

TEST(TopModel, rates_over_the_snapshot_interval) {
  TopSnapshot before = load("before.json"), after = load("after.json");
  after.ts_ns = before.ts_ns + 250'000'000;  // a quarter second
  apply_rates(after, before);
  EXPECT_DOUBLE_EQ(*after.connections[0].tx_rate, 80000.0);
}

TEST(TopModel, no_rates_when_counters_go_back_or_time_does_not_move) {
  TopSnapshot before = load("before.json"), after = load("after.json");
  after.connections[0].bytes_sent = 10;  // re-based after an idle expiry
  apply_rates(after, before);
  EXPECT_FALSE(after.connections[0].tx_rate.has_value());
  EXPECT_TRUE(after.connections[0].rx_rate.has_value());
  TopSnapshot same = load("before.json");
  apply_rates(same, load("before.json"));
  EXPECT_FALSE(same.connections[0].tx_rate.has_value());
}

TEST(TopModel, keep_family) {
  TopSnapshot s = load("after.json");
  keep_family(s, 6);
  ASSERT_EQ(s.connections.size(), 2u);
  EXPECT_EQ(s.connections[0].comm, "envoy");
  ASSERT_EQ(s.flows.size(), 2u);  // the IPv6 peer, and "other" which has no family
  s = load("after.json");
  keep_family(s, 4);
  EXPECT_EQ(s.connections.size(), 5u);
  EXPECT_EQ(s.flows.size(), 5u);
}

TEST(TopModel, parses_what_the_agent_writes) {
  aggregate::Snapshot snap;
  snap.taken_mono_ns = 5'000'000'000;
  snap.taken_unix_ns = 1795240050000000000;
  snap.health.stage = aggregate::FoldLevel::peer;
  aggregate::ConnectionView v;
  v.connection.cookie = 77;
  v.connection.direction = event::Direction::outbound;
  v.connection.state = event::kTcpEstablished;
  v.connection.pid = 99;
  std::snprintf(v.connection.comm.data(), v.connection.comm.size(), "curl");
  v.connection.local.family = 4;
  v.connection.local.bytes = {127, 0, 0, 1};
  v.connection.remote = v.connection.local;
  v.connection.local_port = 40000;
  v.connection.remote_port = 443;
  v.connection.first_ns = 1'000'000'000;
  v.connection.last_ns = 4'000'000'000;
  v.connection.srtt_us = 50;
  v.connection.retransmits = 3;
  v.connection.segs_out = 300;
  v.workload.namespace_name = "shop";
  v.workload.pod = "cart-0";
  snap.connections.push_back(v);
  aggregate::FlowView f;
  f.key.direction = event::Direction::outbound;
  f.key.port = 443;
  f.key.peer = v.connection.remote;
  f.stats.connects[static_cast<int>(aggregate::ConnectResult::refused)] = 2;
  f.stats.active = 1;
  snap.flows.push_back(f);

  TopSnapshot s = parse_snapshot(netwatch::serve::snapshot_to_json(snap, 100).dump());
  EXPECT_EQ(s.ts_ns, 1795240050000000000u);
  EXPECT_EQ(s.series_budget_stage, 1);
  ASSERT_EQ(s.connections.size(), 1u);
  const TopConnection& c = s.connections[0];
  EXPECT_EQ(c.cookie, 77u);
  EXPECT_EQ(c.comm, "curl");
  EXPECT_EQ(c.state, "ESTABLISHED");
  EXPECT_EQ(format_endpoint(c.remote, c.remote_port), "127.0.0.1:443");
  EXPECT_DOUBLE_EQ(c.age_s, 4.0);
  EXPECT_DOUBLE_EQ(c.retransmit_ratio, 0.01);
  EXPECT_EQ(c.pod, "cart-0");
  ASSERT_EQ(s.flows.size(), 1u);
  EXPECT_EQ(s.flows[0].refused, 2u);
  EXPECT_EQ(s.flows[0].port, "443");
}

TEST(TopModel, malformed_snapshots_name_the_bad_field) {
  auto error_of = [](const std::string& text) -> std::string {
    try {
      parse_snapshot(text);
    } catch (const SnapshotError& e) {
      return e.what();
    }
    return "(parsed)";
  };
  EXPECT_EQ(error_of("<html>502 Bad Gateway</html>"),
            "malformed snapshot: not JSON (it starts with \"<html>502 Bad Gateway</html>\")");
  EXPECT_EQ(error_of("[]"), "malformed snapshot: document: expected an object");
  EXPECT_EQ(error_of("{}"), "malformed snapshot: ts_ns: missing");

  nlohmann::json doc = nlohmann::json::parse(read_file(data_path("after.json")));
  nlohmann::json bad = doc;
  bad["connections"][2]["srtt_us"] = "fast";
  EXPECT_EQ(error_of(bad.dump()),
            "malformed snapshot: connections[2].srtt_us: expected a non-negative integer, got string");
  bad = doc;
  bad["connections"][0].erase("remote");
  EXPECT_EQ(error_of(bad.dump()), "malformed snapshot: connections[0].remote: missing");
  bad = doc;
  bad["flows"][1]["connects"]["timeout"] = -1;
  EXPECT_EQ(error_of(bad.dump()), "malformed snapshot: flows[1].connects.timeout: must not be negative");
  bad = doc;
  bad["connections"][0]["remote_port"] = 70000;
  EXPECT_EQ(error_of(bad.dump()), "malformed snapshot: connections[0].remote_port: out of range (70000)");
  bad = doc;
  bad["connections"] = nullptr;
  EXPECT_EQ(error_of(bad.dump()), "malformed snapshot: connections: expected an array, got null");
  bad = doc;
  bad["connections"][0]["family"] = 5;
  EXPECT_EQ(error_of(bad.dump()), "malformed snapshot: connections[0].family: expected 4 or 6");
}

// ---- columns ----

template <class Row>
void expect_well_formed(const std::vector<Column<Row>>& table) {
  std::set<std::string_view> keys;
  for (const auto& c : table) {
    EXPECT_TRUE(keys.insert(c.key).second) << "duplicate --sort key " << c.key;
    EXPECT_GE(c.width, static_cast<int>(c.title.size())) << c.key;
    EXPECT_LE(c.min_width, c.width) << c.key;
    EXPECT_FALSE(c.description.empty()) << c.key << " needs a line for the help screen";
    EXPECT_NE(c.format, nullptr) << c.key;
    EXPECT_NE(c.compare, nullptr) << c.key;
  }
}

TEST(TopColumns, one_row_each_with_a_unique_key) {
  expect_well_formed(connection_columns());
  expect_well_formed(flow_columns());
  EXPECT_EQ(find_column(connection_columns(), "RETR%"), find_column(connection_columns(), "retrans%"));
  EXPECT_EQ(find_column(connection_columns(), "Rtt"), find_column(connection_columns(), "rtt"));
  EXPECT_FALSE(find_column(connection_columns(), "nope").has_value());
}

TEST(TopColumns, cell_formats) {
  EXPECT_EQ(format_duration_us(0), "-");
  EXPECT_EQ(format_duration_us(45), "45us");
  EXPECT_EQ(format_duration_us(1234), "1.23ms");
  EXPECT_EQ(format_duration_us(45200), "45.2ms");
  EXPECT_EQ(format_duration_us(250000), "250ms");
  EXPECT_EQ(format_duration_us(999900), "1.00s");
  EXPECT_EQ(format_duration_us(3050000), "3.05s");
  EXPECT_EQ(format_seconds(0.00025), "250us");
  EXPECT_EQ(format_age(59.9), "59s");
  EXPECT_EQ(format_age(723), "12m03s");
  EXPECT_EQ(format_age(11100), "3h05m");
  EXPECT_EQ(format_age(190001), "2d04h");
  EXPECT_EQ(format_count(9999999), "9999999");
  EXPECT_EQ(format_count(12345678), "12.3M");
  EXPECT_EQ(format_percent(0), "0");
  EXPECT_EQ(format_percent(0.00001), "<0.01");
  EXPECT_EQ(format_percent(0.0033), "0.33");
  EXPECT_EQ(format_percent(0.125), "12.5");
  EXPECT_EQ(format_percent(1.0), "100");
  EXPECT_EQ(format_rate(std::nullopt), "-");
  EXPECT_EQ(format_rate(512), "512");
  EXPECT_EQ(format_rate(1536), "1.5K");
  EXPECT_EQ(format_rate(5.0 * 1024 * 1024 * 1024), "5.0G");
  // Where rounding adds a digit, the next unit takes over: every cell fits its column.
  EXPECT_EQ(format_duration_us(999.7), "1.00ms");
  EXPECT_EQ(format_duration_us(9996), "10.0ms");
  EXPECT_EQ(format_duration_us(99960), "100ms");
  EXPECT_EQ(format_duration_us(999600), "1.00s");
  EXPECT_EQ(format_percent(0.09996), "10.0");
  EXPECT_EQ(format_percent(0.99996), "100");
  EXPECT_EQ(format_rate(999.7), "1.0K");
  EXPECT_EQ(format_rate(1023.9 * 1024), "1.0M");
  for (double v = 1; v < 1e13; v *= 1.37) {
    EXPECT_LE(format_rate(v).size(), 5u) << v;
    EXPECT_LE(format_duration_us(v / 1e3).size(), 6u) << v;
    EXPECT_LE(format_percent(v / 1e13).size(), 5u) << v;
  }
  EXPECT_EQ(format_state("ESTABLISHED"), "ESTAB");
  EXPECT_EQ(format_state("SYN_SENT"), "SYN-SENT");
  EXPECT_EQ(format_endpoint("::1", 80), "[::1]:80");
  EXPECT_EQ(fit_text("kube-controller", 8), "kube-co~");
}

// ---- keys ----

cli::Key ch(char c) {
  return {cli::KeyCode::character, c};
}

TEST(TopKeys, sort_column_moves_and_resets_reverse) {
  ViewState s = state_for(View::connections);
  size_t start = s.connection_sort;
  s.reverse = true;
  EXPECT_EQ(apply_key(s, ch('>'), 7, 20), KeyAction::redraw);
  EXPECT_EQ(s.connection_sort, start + 1);
  EXPECT_FALSE(s.reverse);
  apply_key(s, {cli::KeyCode::left}, 7, 20);
  apply_key(s, {cli::KeyCode::left}, 7, 20);
  EXPECT_EQ(s.connection_sort, start - 1);
  s.connection_sort = 0;
  apply_key(s, ch('<'), 7, 20);
  EXPECT_EQ(s.connection_sort, connection_columns().size() - 1) << "wraps around";
  apply_key(s, ch('r'), 7, 20);
  EXPECT_TRUE(s.reverse);
}

TEST(TopKeys, filter_is_typed_then_applied_or_cancelled) {
  ViewState s = state_for(View::connections);
  apply_key(s, ch('/'), 7, 20);
  EXPECT_TRUE(s.editing_filter);
  for (char c : std::string("54x")) apply_key(s, ch(c), 7, 20);
  apply_key(s, {cli::KeyCode::backspace}, 7, 20);
  EXPECT_EQ(apply_key(s, ch('q'), 7, 20), KeyAction::redraw) << "q is text while typing a filter";
  EXPECT_EQ(s.filter, "") << "nothing applies before Enter";
  apply_key(s, {cli::KeyCode::enter}, 7, 20);
  EXPECT_EQ(s.filter, "54q");
  EXPECT_FALSE(s.editing_filter);
  apply_key(s, ch('/'), 7, 20);
  EXPECT_EQ(s.filter_draft, "54q") << "editing starts from the current filter";
  apply_key(s, ch('9'), 7, 20);
  apply_key(s, {cli::KeyCode::escape}, 7, 20);
  EXPECT_EQ(s.filter, "54q") << "Esc cancels the edit";
  apply_key(s, {cli::KeyCode::escape}, 7, 20);
  EXPECT_EQ(s.filter, "") << "a second Esc clears the filter";
}

TEST(TopKeys, view_pause_interval_help_quit) {
  ViewState s = state_for(View::connections);
  apply_key(s, ch('f'), 7, 20);
  EXPECT_EQ(s.view, View::flows);
  EXPECT_EQ(apply_key(s, ch('p'), 7, 20), KeyAction::redraw);
  EXPECT_TRUE(s.paused);
  EXPECT_EQ(apply_key(s, ch('p'), 7, 20), KeyAction::refresh_now);
  EXPECT_EQ(apply_key(s, ch('+'), 7, 20), KeyAction::refresh_now);
  EXPECT_EQ(s.interval_ns, 2'000'000'000u);
  apply_key(s, ch('-'), 7, 20);
  apply_key(s, ch('-'), 7, 20);
  EXPECT_EQ(s.interval_ns, 500'000'000u);
  s.interval_ns = 100'000'000;
  EXPECT_EQ(apply_key(s, ch('-'), 7, 20), KeyAction::none) << "100ms is the floor";
  apply_key(s, ch('h'), 7, 20);
  EXPECT_TRUE(s.help);
  apply_key(s, ch('x'), 7, 20);
  EXPECT_FALSE(s.help) << "any key closes the help";
  EXPECT_EQ(apply_key(s, ch('q'), 7, 20), KeyAction::quit);
}

TEST(TopKeys, scrolling_stays_within_the_rows) {
  ViewState s = state_for(View::connections);
  for (int i = 0; i < 10; ++i) apply_key(s, {cli::KeyCode::down}, 7, 20);
  EXPECT_EQ(s.scroll, 6u);
  apply_key(s, {cli::KeyCode::page_up}, 7, 4);
  EXPECT_EQ(s.scroll, 2u);
  apply_key(s, {cli::KeyCode::up}, 7, 4);
  apply_key(s, {cli::KeyCode::up}, 7, 4);
  apply_key(s, {cli::KeyCode::up}, 7, 4);
  EXPECT_EQ(s.scroll, 0u);
}

}  // namespace
}  // namespace netwatch::cli::top
