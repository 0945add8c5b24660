// `netwatch top`, the real binary in a real terminal: tmux runs it against real traffic (one
// clean and one lossy loopback connection that stay open and keep exchanging data), the test
// presses keys, reads the pane with capture-pane, and checks that the terminal is given back.
// Once standalone (probes loaded by top, as root) and once against a real agent (as nobody: the
// DaemonSet case needs no privileges). Ports 62500-62599.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/child_process.h"
#include "cli/top/columns.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

constexpr char kTmux[] = "/usr/bin/tmux";
constexpr char kSetpriv[] = "/usr/bin/setpriv";
const std::vector<std::string> kAsNobody = {kSetpriv, "--reuid=65534", "--regid=65534", "--clear-groups"};

// Runs a short command to its end; returns its stdout. Fails the test on a non-zero exit.
std::string run_output(const std::vector<std::string>& argv) {
  ChildProcess child(argv);
  auto status = child.wait(10s);
  std::string out;
  for (const std::string& line : child.lines()) out += line + "\n";
  EXPECT_TRUE(status && status->exited && status->code == 0)
      << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << " failed: " << child.stderr_text();
  return out;
}

// One tmux server on a socket of the test's own, with one window running a plain bash. The
// destructor kills the server, so nothing started in the pane outlives a failed test.
class TmuxSession {
 public:
  TmuxSession(int width, int height)
      : socket_(::testing::TempDir() + "nwtop_" + std::to_string(getpid()) + "_" + std::to_string(serial_++)) {
    struct stat st {};
    if (stat(kTmux, &st) != 0) throw std::runtime_error("tmux is not installed (scripts/install-deps.sh installs it)");
    // A fixed prompt and no rc files: the pane shows exactly what the test typed and got back.
    tmux({"new-session", "-d", "-s", "top", "-x", std::to_string(width), "-y", std::to_string(height),
          "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=screen HOME=/tmp 'PS1=nwtest$ ' bash --norc --noprofile"});
    wait_for([](const std::string& pane) { return pane.find("nwtest$") != std::string::npos; }, 10s,
             "the shell prompt");
  }
  ~TmuxSession() {
    ChildProcess kill({kTmux, "-S", socket_, "kill-server"});  // SIGHUP to the pane: top restores and exits
    kill.wait(10s);
    ::unlink(socket_.c_str());
  }

  std::string tmux(std::vector<std::string> args) {
    args.insert(args.begin(), {kTmux, "-S", socket_, "-f", "/dev/null"});
    return run_output(args);
  }
  // Types a command line into the shell and presses Enter.
  void type_line(const std::string& line) {
    tmux({"send-keys", "-t", "top", "-l", line});
    tmux({"send-keys", "-t", "top", "Enter"});
  }
  // One key, by tmux's name for it ("q", "Enter", "Escape", ">").
  void key(const std::string& name) { tmux({"send-keys", "-t", "top", name}); }
  std::string pane() { return tmux({"capture-pane", "-p", "-t", "top"}); }
  std::string pane_with_attributes() { return tmux({"capture-pane", "-p", "-e", "-t", "top"}); }
  std::string format(const std::string& f) {
    std::string out = tmux({"display-message", "-p", "-t", "top", f});
    return out.substr(0, out.find('\n'));
  }
  // Captures until `done` holds or the deadline passes; returns the last capture either way.
  std::string wait_for(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds timeout,
                       const char* what) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = pane();
      if (done(last)) return last;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "waited " << timeout.count() << " ms for " << what << "; the pane shows:\n" << last;
    return last;
  }

 private:
  static inline int serial_ = 0;
  std::string socket_;  // a server of the test's own, never the user's
};

// One clean and one lossy connection to loopback ports, both open and busy until destroyed: a
// 64-byte ping-pong every 10ms on the clean one, a bulk stream under 10% input loss on the other.
class Traffic {
 public:
  Traffic(uint16_t clean_port, uint16_t lossy_port)
      : clean_listener_(listen_on(AF_INET, clean_port)), lossy_listener_(listen_on(AF_INET, lossy_port)) {
    clean_client_ = connect_to(AF_INET, clean_port);
    clean_server_ = accept_one(clean_listener_.get());
    lossy_client_ = connect_to(AF_INET, lossy_port);
    lossy_server_ = accept_one(lossy_listener_.get());
    // Loss after the handshake: a dropped final ACK left the server with nothing to accept
    // for seconds (a CI run failed with "accept: nothing arrived").
    loss_rule_ = nft_.add_rule("tcp dport " + std::to_string(lossy_port) + " numgen random mod 10 == 0 counter drop");
    threads_.emplace_back(std::make_unique<SocketThread>(clean_server_.get(), [](int fd) {
      char buf[64];
      for (;;) {
        recv_exact(fd, buf, sizeof(buf));
        send_all(fd, buf, sizeof(buf));
      }
    }));
    threads_.emplace_back(std::make_unique<SocketThread>(clean_client_.get(), [](int fd) {
      char buf[64] = {};
      for (;;) {
        send_all(fd, buf, sizeof(buf));
        recv_exact(fd, buf, sizeof(buf));
        std::this_thread::sleep_for(10ms);
      }
    }));
    threads_.emplace_back(std::make_unique<SocketThread>(lossy_server_.get(), [](int fd) {
      char buf[65536];
      while (recv(fd, buf, sizeof(buf), 0) > 0) {
      }
    }));
    threads_.emplace_back(std::make_unique<SocketThread>(lossy_client_.get(), [](int fd) {
      std::string chunk(65536, 'x');
      for (;;) {
        send_all(fd, chunk.data(), chunk.size());
        std::this_thread::sleep_for(5ms);
      }
    }));
  }
  // Ground truth from the kernel, not from netwatch: the lossy client really retransmitted.
  uint32_t lossy_retransmits() const { return read_tcp_info(lossy_client_.get()).tcpi_total_retrans; }
  uint64_t dropped() const { return nft_.packets(loss_rule_); }

 private:
  NftTable nft_;
  uint64_t loss_rule_ = 0;
  Fd clean_listener_, lossy_listener_;
  Fd clean_client_, clean_server_, lossy_client_, lossy_server_;
  std::vector<std::unique_ptr<SocketThread>> threads_;  // declared last: stopped before the sockets close
};

// "nwtop-exit=N" as the shell printed it (the typed command line holds "nwtop-exit=$?").
bool exited(const std::string& pane) {
  for (size_t at = pane.find("nwtop-exit="); at != std::string::npos; at = pane.find("nwtop-exit=", at + 1))
    if (at + 11 < pane.size() && std::isdigit(static_cast<unsigned char>(pane[at + 11]))) return true;
  return false;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The connection table of a frame, by column title. Every cell is one word (addresses, "-",
// "45us"); a frame wide enough for all columns is needed, which 160 columns are for loopback.
struct Table {
  std::vector<std::string> titles;
  std::vector<std::map<std::string, std::string>> rows;

  const std::map<std::string, std::string>* remote(const std::string& endpoint) const {
    for (const auto& r : rows)
      if (r.count("REMOTE") && r.at("REMOTE") == endpoint) return &r;
    return nullptr;
  }
};

Table parse_table(const std::string& frame) {
  Table t;
  bool in_table = false;
  for (const std::string& line : split_lines(frame)) {
    std::vector<std::string> w = words(line);
    if (!in_table) {
      if (w.size() > 3 && w[0] == "PID" && line.find("RETRANS") != std::string::npos) {
        t.titles = w;
        in_table = true;
      }
      continue;
    }
    if (w.size() != t.titles.size()) break;  // the blank lines and the footer
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < w.size(); ++i) row[t.titles[i]] = w[i];
    t.rows.push_back(std::move(row));
  }
  return t;
}

uint64_t number(const std::map<std::string, std::string>& row, const std::string& column) {
  const std::string& v = row.at(column);
  return v.find_first_not_of("0123456789") == std::string::npos ? std::stoull(v) : 0;
}

// What the test waits for: both client connections listed with an RTT, the lossy one with
// retransmissions and on top.
bool both_connections_with_lossy_first(const std::string& frame, const std::string& clean, const std::string& lossy) {
  Table t = parse_table(frame);
  const auto* c = t.remote(clean);
  const auto* l = t.remote(lossy);
  return c && l && c->at("RTT") != "-" && l->at("RTT") != "-" && number(*l, "RETRANS") > 0 && !t.rows.empty() &&
         t.rows[0].at("REMOTE") == lossy;
}

// The shell's own words about its terminal after top left: raw mode shows as -icanon / -echo.
void expect_terminal_restored(TmuxSession& tmux) {
  EXPECT_EQ(tmux.format("#{alternate_on}"), "0") << "still on the alternate screen";
  EXPECT_EQ(tmux.format("#{cursor_flag}"), "1") << "the cursor is still hidden";
  // The verdict is printed as tty-42-...: text the typed command line itself does not contain.
  tmux.type_line("echo tty-$((6*7))-$(stty -a | grep -q -e -icanon -e ' -echo ' && echo raw || echo cooked)");
  std::string pane =
      tmux.wait_for([](const std::string& p) { return p.find("tty-42-") != std::string::npos; }, 10s, "stty's verdict");
  EXPECT_NE(pane.find("tty-42-cooked"), std::string::npos) << "left in raw mode:\n" << pane;
}

// The interactive session both sources share: start top sorted by RTT, filter to this test's
// ports with '/', move the sort to RETRANS with '>', check the frame, quit with q.
void drive_top(TmuxSession& tmux, const std::string& command, uint16_t clean_port, uint16_t lossy_port,
               const std::string& filter) {
  const std::string clean = "127.0.0.1:" + std::to_string(clean_port),
                    lossy = "127.0.0.1:" + std::to_string(lossy_port);
  tmux.type_line(command + "; echo nwtop-exit=$?");
  tmux.wait_for([](const std::string& p) { return p.find("sort RTT desc") != std::string::npos; }, 30s,
                "top's first frame");
  EXPECT_EQ(tmux.format("#{alternate_on}"), "1") << "top should draw on the alternate screen";

  Traffic traffic(clean_port, lossy_port);

  tmux.key("/");
  tmux.wait_for([](const std::string& p) { return p.find("filter: _") != std::string::npos; }, 5s, "the filter prompt");
  tmux.tmux({"send-keys", "-t", "top", "-l", filter});
  tmux.key("Enter");
  tmux.wait_for([&](const std::string& p) { return p.find("filter \"" + filter + "\"") != std::string::npos; }, 5s,
                "the filter to apply");

  const auto& columns = netwatch::cli::top::connection_columns();
  size_t rtt = *netwatch::cli::top::find_column(columns, "rtt"),
         retrans = *netwatch::cli::top::find_column(columns, "retrans");
  for (size_t i = rtt; i < retrans; ++i) tmux.key(">");
  tmux.wait_for([](const std::string& p) { return p.find("sort RETRANS desc") != std::string::npos; }, 5s,
                "the sort to move to RETRANS");

  std::string frame =
      tmux.wait_for([&](const std::string& p) { return both_connections_with_lossy_first(p, clean, lossy); }, 30s,
                    "both connections with an RTT and the lossy one first");
  Table table = parse_table(frame);
  if (getenv("NWTOP_SHOW")) std::fprintf(stderr, "%s\n", frame.c_str());  // to look at what was checked
  const auto* c = table.remote(clean);
  const auto* l = table.remote(lossy);
  ASSERT_TRUE(c && l) << frame;
  EXPECT_NE(c->at("RTT"), "-") << frame;
  EXPECT_NE(l->at("RTT"), "-") << frame;
  EXPECT_GT(number(*l, "RETRANS"), 0u) << frame;
  EXPECT_EQ(table.rows.front().at("REMOTE"), lossy) << frame;
  EXPECT_GT(traffic.dropped(), 0u) << "the loss rule dropped nothing";
  EXPECT_GT(traffic.lossy_retransmits(), 0u) << "the kernel saw no retransmission on the lossy connection";
  for (const auto& row : table.rows)
    EXPECT_TRUE(row.at("LOCAL").find(filter) != std::string::npos || row.at("REMOTE").find(filter) != std::string::npos)
        << "the filter let this row through:\n"
        << frame;

  EXPECT_NE(tmux.pane_with_attributes().find("\x1b[7m"), std::string::npos) << "a terminal gets colour";

  // Resized to 80x24 (SIGWINCH), the frame is laid out again and still answers the question.
  tmux.tmux({"resize-window", "-t", "top", "-x", "80", "-y", "24"});
  frame = tmux.wait_for(
      [&](const std::string& p) {
        std::vector<std::string> lines = split_lines(p);
        bool narrow = std::all_of(lines.begin(), lines.end(), [](const std::string& l) { return l.size() <= 80; }) &&
                      p.find(" LOCAL ") == std::string::npos;
        return narrow && both_connections_with_lossy_first(p, clean, lossy);
      },
      10s, "the 80x24 frame");
  EXPECT_NE(frame.find("q quit"), std::string::npos) << "the key hints stay on the last line:\n" << frame;

  tmux.key("q");
  std::string after = tmux.wait_for(exited, 10s, "top to exit on q");
  EXPECT_NE(after.find("nwtop-exit=0"), std::string::npos) << after;
  EXPECT_EQ(after.find("sort RETRANS"), std::string::npos) << "the frame is still on the screen:\n" << after;
  expect_terminal_restored(tmux);
}

class TopTmux : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test"; }
};

TEST_F(TopTmux, standalone_sorts_the_lossy_connection_first) {
  TmuxSession tmux(160, 40);
  drive_top(
      tmux,
      std::string(NETWATCH_BINARY) + " top --sort rtt --interval 500ms --rtt-interval 100ms --drain-interval 20ms",
      62501, 62502, "127.0.0.1:6250");
}

TEST_F(TopTmux, agent_source_as_nobody_sorts_the_lossy_connection_first) {
  AgentProcess agent(62590, {"--publish-interval", "200ms", "--rtt-interval", "100ms", "--drain-interval", "20ms"});
  TmuxSession tmux(160, 40);
  std::string as_nobody;
  for (const std::string& a : kAsNobody) as_nobody += a + " ";
  drive_top(tmux, as_nobody + NETWATCH_BINARY + " top --agent http://127.0.0.1:62590 --sort rtt --interval 500ms",
            62511, 62512, "127.0.0.1:6251");
}

TEST_F(TopTmux, unreachable_agent_is_one_line_and_the_screen_is_untouched) {
  TmuxSession tmux(100, 20);
  tmux.type_line(std::string(NETWATCH_BINARY) + " top --agent http://127.0.0.1:1; echo nwtop-exit=$?");
  std::string pane = tmux.wait_for(exited, 15s, "top to give up");
  EXPECT_NE(pane.find("netwatch: cannot reach agent at http://127.0.0.1:1: Connection refused"), std::string::npos)
      << pane;
  EXPECT_NE(pane.find("nwtop-exit=1"), std::string::npos) << pane;
  expect_terminal_restored(tmux);
}

TEST_F(TopTmux, sigterm_restores_the_terminal_and_no_color_is_respected) {
  TmuxSession tmux(100, 30);
  tmux.type_line("NO_COLOR=1 " + std::string(NETWATCH_BINARY) + " top --interval 200ms; echo nwtop-exit=$?");
  tmux.wait_for([](const std::string& p) { return p.find("sort RETRANS desc") != std::string::npos; }, 30s,
                "top's first frame");
  std::string attributes = tmux.pane_with_attributes();
  EXPECT_EQ(attributes.find("\x1b[7m"), std::string::npos) << "NO_COLOR is set";
  EXPECT_EQ(attributes.find("\x1b[1m"), std::string::npos) << "NO_COLOR is set";
  // top is the pane shell's child: find it in /proc (ppid is the 4th field of stat).
  pid_t pid = 0;
  const std::string shell = tmux.format("#{pane_pid}");
  tmux.wait_for(
      [&](const std::string&) {
        for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
          std::ifstream stat(entry.path() / "stat");
          std::string pid_text, comm, state, ppid;
          if (stat >> pid_text >> comm >> state >> ppid && ppid == shell && comm == "(netwatch)")
            pid = std::stoi(pid_text);
        }
        return pid != 0;
      },
      10s, "top's pid");
  ASSERT_NE(pid, 0);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  std::string after = tmux.wait_for(exited, 10s, "top to exit on SIGTERM");
  EXPECT_NE(after.find("nwtop-exit=0"), std::string::npos) << after;
  expect_terminal_restored(tmux);
}

// --once and --json against a running agent, read through pipes (as scripts do).
class TopAgentOutputs : public TopTmux {};

TEST_F(TopAgentOutputs, once_prints_one_plain_frame_as_nobody) {
  AgentProcess agent(62591, {"--publish-interval", "200ms", "--rtt-interval", "100ms", "--drain-interval", "20ms"});
  Traffic traffic(62521, 62522);
  const std::string clean = "127.0.0.1:62521", lossy = "127.0.0.1:62522";
  std::vector<std::string> argv = kAsNobody;
  for (const char* a : {NETWATCH_BINARY, "top", "--agent", "http://127.0.0.1:62591", "--once", "--interval", "300ms",
                        "--filter", "127.0.0.1:6252"})
    argv.push_back(a);
  // The lossy connection needs a moment to retransmit: run the command again until it has.
  std::string frame;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    ChildProcess top(argv);
    auto status = top.wait(15s);
    ASSERT_TRUE(status && status->exited) << top.stderr_text();
    ASSERT_EQ(status->code, 0) << top.stderr_text();
    frame.clear();
    for (const std::string& l : top.lines()) frame += l + "\n";
    // A connection new since the first of the two snapshots has no rate yet: wait for one that has.
    if (both_connections_with_lossy_first(frame, clean, lossy) && parse_table(frame).remote(lossy)->at("TX/s") != "-")
      break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(both_connections_with_lossy_first(frame, clean, lossy)) << frame;
  EXPECT_EQ(frame.find('\x1b'), std::string::npos) << "--once prints no escape sequences";
  EXPECT_EQ(frame.find("q quit"), std::string::npos) << "no key hints in --once";
  EXPECT_EQ(frame.rfind("netwatch top  agent http://127.0.0.1:62591", 0), 0u) << frame;
  Table t = parse_table(frame);
  EXPECT_NE(t.remote(lossy)->at("TX/s"), "-") << "two snapshots an interval apart measure the rate:\n" << frame;
  EXPECT_NE(t.remote(lossy)->at("TX/s"), "0") << frame;
}

TEST_F(TopAgentOutputs, json_prints_the_snapshot) {
  AgentProcess agent(62592, {"--publish-interval", "200ms", "--rtt-interval", "100ms", "--drain-interval", "20ms"});
  Traffic traffic(62531, 62532);
  nlohmann::json doc, lossy;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (lossy.is_null() && std::chrono::steady_clock::now() < deadline) {
    ChildProcess top({NETWATCH_BINARY, "top", "--agent", "http://127.0.0.1:62592", "--json"});
    auto status = top.wait(15s);
    ASSERT_TRUE(status && status->exited && status->code == 0) << top.stderr_text();
    ASSERT_EQ(top.lines().size(), 1u) << "one document on one line";
    doc = nlohmann::json::parse(top.lines()[0]);
    for (const auto& c : doc["connections"])
      if (c["remote_port"] == 62532 && c["retransmits"].get<uint64_t>() > 0 && c["srtt_us"].get<uint64_t>() > 0)
        lossy = c;
    if (lossy.is_null()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_FALSE(lossy.is_null()) << doc.dump(1);
  EXPECT_EQ(lossy["direction"], "outbound");
  EXPECT_EQ(lossy["pid"], getpid());
  for (const char* key : {"ts_ns", "connections_total", "connections_truncated", "events_lost", "flows"})
    EXPECT_TRUE(doc.contains(key)) << key;
}

TEST_F(TopAgentOutputs, unreachable_agent_exits_1_with_one_line) {
  ChildProcess top({NETWATCH_BINARY, "top", "--agent", "http://127.0.0.1:1", "--once"});
  auto status = top.wait(15s);
  ASSERT_TRUE(status && status->exited);
  EXPECT_EQ(status->code, 1);
  EXPECT_EQ(top.stderr_text(), "netwatch: cannot reach agent at http://127.0.0.1:1: Connection refused\n");
  EXPECT_TRUE(top.lines().empty());
}

TEST_F(TopAgentOutputs, bad_flags_and_missing_privileges_exit_2_with_one_line) {
  auto one_line_exit_2 = [](std::vector<std::string> argv, const std::string& says) {
    ChildProcess top(argv);
    auto status = top.wait(15s);
    ASSERT_TRUE(status && status->exited);
    EXPECT_EQ(status->code, 2) << top.stderr_text();
    const std::string& err = top.stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find(says), std::string::npos) << err;
  };
  one_line_exit_2({NETWATCH_BINARY, "top", "--once", "--family", "5"}, "--family");
  one_line_exit_2({NETWATCH_BINARY, "top", "--once", "--interval", "soon"}, "--interval 'soon'");
  one_line_exit_2({NETWATCH_BINARY, "top", "--once", "--sort", "bogus"}, "--sort 'bogus' is not a column");
  one_line_exit_2({NETWATCH_BINARY, "top", "--once", "--agent", "ftp://x:1"}, "--agent 'ftp://x:1'");
  one_line_exit_2({NETWATCH_BINARY, "top"}, "needs a terminal");  // stdin and stdout are pipes here
  std::vector<std::string> argv = kAsNobody;
  for (const char* a : {NETWATCH_BINARY, "top", "--once"}) argv.push_back(a);
  one_line_exit_2(argv, "--agent http://HOST:9464");
}

}  // namespace
}  // namespace nwtest
