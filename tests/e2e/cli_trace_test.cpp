// `netwatch trace` end to end: the real binary, real connects, its JSON lines parsed and held
// against the sockets; and the two ways it must refuse to run.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/child_process.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

using nlohmann::json;

class CliTraceTest : public KernelTest {
 protected:
  std::vector<std::string> trace_argv(std::vector<std::string> extra) const {
    std::vector<std::string> argv = {NETWATCH_BINARY, "trace"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    for (const std::string& a : probe_args()) argv.push_back(a);
    return argv;
  }
};

struct OurConnect {
  int family;
  uint64_t unix_ns;  // when connect() returned
  size_t index;      // order of the connects
};

TEST_P(CliTraceTest, json_lines_describe_real_connects) {
  constexpr size_t kCount = 4;
  const uint16_t traced = port(61700), ignored = port(61700, 1);
  Fd listener4 = listen_on(AF_INET, traced), listener6 = listen_on(AF_INET6, traced);
  Fd other = listen_on(AF_INET, ignored);
  ChildProcess child(
      trace_argv({"--json", "--type", "connect", "--port", std::to_string(traced), "--count", std::to_string(kCount)}));

  // Connects made before netwatch reads its buffer are never printed; after the first printed
  // one, every connect to the traced port must be, and none to the other port.
  std::vector<Fd> keep;
  std::map<uint16_t, OurConnect> ours;  // local port -> the connect
  std::optional<ExitStatus> status;
  for (auto deadline = std::chrono::steady_clock::now() + 15s;
       !status && std::chrono::steady_clock::now() < deadline;) {
    keep.push_back(connect_to(AF_INET, ignored));
    const size_t index = ours.size();
    const int family = index % 2 ? AF_INET6 : AF_INET;
    keep.push_back(connect_to(family, traced));
    ours[local_port(keep.back().get())] = {family, unix_ns(), index};
    // 50 ms apart: far wider than the moment in which a perf buffer is open on one CPU and
    // not yet on the other, so no connect after a printed one can be lost.
    auto next = std::chrono::steady_clock::now() + 50ms;
    while (!status && std::chrono::steady_clock::now() < next) {
      child.read_lines(10ms);
      status = child.wait(0ms);
    }
  }
  if (!status) status = child.wait(5s);
  ASSERT_TRUE(status) << "--count " << kCount << " never reached; stderr: " << child.stderr_text();
  EXPECT_TRUE(status->exited && status->code == 0) << child.stderr_text();

  std::vector<std::string> lines = child.lines();
  ASSERT_EQ(lines.size(), kCount) << child.stderr_text();
  const std::string comm = thread_comm();
  std::vector<size_t> printed;
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON";
    ASSERT_TRUE(j.is_object());
    for (const char* field : {"type", "ts_ns", "family", "saddr", "sport", "daddr", "dport", "direction", "pid", "comm",
                              "cookie", "cgroup_id", "netns", "latency_ns"})
      ASSERT_TRUE(j.contains(field)) << "missing " << field;
    EXPECT_EQ(j["type"], "connect");
    ASSERT_TRUE(j["sport"].is_number_unsigned());
    auto it = ours.find(j["sport"].get<uint16_t>());
    ASSERT_NE(it, ours.end()) << "sport is not the local port of one of our connects";
    const OurConnect& c = it->second;
    printed.push_back(c.index);
    EXPECT_EQ(j["dport"], traced);
    EXPECT_EQ(j["family"], c.family == AF_INET ? 4 : 6);
    EXPECT_EQ(j["saddr"], loopback_text(c.family));
    EXPECT_EQ(j["daddr"], loopback_text(c.family));
    EXPECT_EQ(j["direction"], "outbound");
    EXPECT_EQ(j["pid"], getpid());
    EXPECT_EQ(j["comm"], comm);
    ASSERT_TRUE(j["ts_ns"].is_number_unsigned());
    int64_t skew = int64_t(j["ts_ns"].get<uint64_t>() - c.unix_ns);
    EXPECT_LT(std::llabs(skew), 2'000'000'000) << "ts_ns is Unix-epoch ns, stamped during our connect()";
    ASSERT_TRUE(j["cookie"].is_number_unsigned());
    EXPECT_GT(j["cookie"].get<uint64_t>(), 0u);
    ASSERT_TRUE(j["latency_ns"].is_number_unsigned());
    EXPECT_GT(j["latency_ns"].get<uint64_t>(), 0u);
    EXPECT_LT(j["latency_ns"].get<uint64_t>(), 1'000'000'000u);
  }
  // Printed in order, one per connect, and no gap once printing started.
  for (size_t i = 1; i < printed.size(); ++i) EXPECT_EQ(printed[i], printed[i - 1] + 1);
}

TEST_P(CliTraceTest, unknown_type_is_a_usage_error) {
  ChildProcess child(trace_argv({"--type", "bogus"}));
  std::optional<ExitStatus> status = child.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 2);
  EXPECT_TRUE(child.lines().empty());
  const std::string& err = child.stderr_text();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("bogus"), std::string::npos) << err;
}

TEST_P(CliTraceTest, unprivileged_user_is_told_what_is_missing) {
  // nobody, no groups; setpriv drops every capability with the uid change.
  std::vector<std::string> argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  for (const std::string& a : trace_argv({"--json"})) argv.push_back(a);
  ChildProcess child(argv);
  std::optional<ExitStatus> status = child.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 2) << child.stderr_text();
  EXPECT_TRUE(child.lines().empty());
  const std::string& err = child.stderr_text();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_TRUE(err.find("root") != std::string::npos || err.find("CAP_BPF") != std::string::npos) << err;
}

NW_ALL_COMBOS(CliTraceTest);

}  // namespace
}  // namespace nwtest
