// The agent under exactly the chart's privileges: uid 0 with CAP_BPF and CAP_PERFMON as its only
// capabilities, bounding set included, and no_new_privs (allowPrivilegeEscalation: false), the
// way a container runtime starts it. What it holds once started; that the host's cgroup tree is
// not writable to it; that a seccomp filter denying bpf() is named as the cause.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "sandbox/capabilities.h"
#include "sandbox/landlock.h"
#include "k8s/pod_resolver.h"
#include "tests/support/agent_process.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

// setpriv (util-linux) as a runtime does it: the bounding set cut to BPF and PERFMON, so root's
// exec gets exactly those as permitted and effective; nothing inheritable or ambient.
const std::vector<std::string> kChartPrivileges = {"/usr/bin/setpriv", "--bounding-set=-all,+bpf,+perfmon",
                                                   "--inh-caps=-all",  "--ambient-caps=-all",
                                                   "--no-new-privs",   "--"};
constexpr uint64_t kBpfPerfmon = (1ULL << CAP_BPF) | (1ULL << CAP_PERFMON);

// The "Name:" fields of a /proc/.../status file.
std::map<std::string, std::string> proc_status(const std::string& path) {
  std::map<std::string, std::string> fields;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    fields[line.substr(0, colon)] = value;
  }
  return fields;
}

uint64_t hex(const std::string& s) {
  return std::stoull(s, nullptr, 16);
}

std::vector<std::string> with_chart_privileges(std::vector<std::string> argv) {
  argv.insert(argv.begin(), kChartPrivileges.begin(), kChartPrivileges.end());
  return argv;
}

// Waits for /healthz; false if the agent exited first or 15 s passed.
bool wait_healthy(ChildProcess& agent, uint16_t port) {
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (http_get("127.0.0.1", port, "/healthz", nullptr) == 200) return true;
    if (agent.wait(100ms)) return false;
  }
  return false;
}

TEST(AgentPrivileges, runs_with_exactly_the_charts_capabilities_and_keeps_none) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
  PinDirForTest pins;
  const uint16_t port = 62931;
  const std::vector<std::string> argv =
      with_chart_privileges({NETWATCH_BINARY, "agent", "--listen", "127.0.0.1:" + std::to_string(port),
                             "--status-interval", "0", "--pin-dir", pins.path()});
  // Twice: the first start loads and pins, the second adopts the pins and restores the checkpoint,
  // as a container restarted by its kubelet does.
  for (int start = 0; start < 2; ++start) {
    SCOPED_TRACE(start == 0 ? "first start" : "restart");
    ChildProcess agent(argv);
    ASSERT_TRUE(wait_healthy(agent, port)) << agent.stderr_text();
    auto at_start = proc_status("/proc/" + std::to_string(agent.pid()) + "/status");
    ASSERT_EQ(hex(at_start["CapBnd"]), kBpfPerfmon) << "setpriv did not start it with the chart's set";
    std::string body;
    ASSERT_EQ(http_get("127.0.0.1", port, "/metrics", &body), 200);
    EXPECT_NE(body.find("netwatch_build_info"), std::string::npos);
    ASSERT_EQ(http_get("127.0.0.1", port, "/api/v1/connections?limit=1", &body), 200);

    // Every thread: capabilities are per thread, and the HTTP threads start after the drop. A TSan
    // build's runtime starts a background thread of its own before main, which keeps them.
#if defined(__SANITIZE_THREAD__)
    int runtime_threads = 1;
#else
    int runtime_threads = 0;
#endif
    int threads = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(agent.pid()) + "/task")) {
      auto status = proc_status(task.path().string() + "/status");
      SCOPED_TRACE("thread " + task.path().filename().string());
      if (hex(status["CapEff"]) != 0 && runtime_threads-- > 0) continue;
      EXPECT_EQ(hex(status["CapEff"]), 0u);
      EXPECT_EQ(hex(status["CapPrm"]), 0u);
      EXPECT_EQ(hex(status["CapInh"]), 0u);
      EXPECT_EQ(hex(status["CapAmb"]), 0u);
      EXPECT_EQ(hex(status["CapBnd"]), kBpfPerfmon);  // the runtime's; without CAP_SETPCAP it stays
      EXPECT_EQ(status["NoNewPrivs"], "1");
      EXPECT_EQ(status["Uid"].substr(0, status["Uid"].find_first_of(" \t")), "0");
      ++threads;
    }
    EXPECT_GE(threads, 2);  // the reader and at least one HTTP thread
    agent.read_lines(0ms);
    EXPECT_NE(agent.stderr_text().find("dropped all capabilities (the bounding set is the runtime's)"),
              std::string::npos)
        << agent.stderr_text();
    EXPECT_NE(agent.stderr_text().find("(Landlock)"), std::string::npos) << agent.stderr_text();
    if (start == 1) {
      EXPECT_NE(agent.stderr_text().find("continuing from the previous agent's checkpoint"), std::string::npos)
          << agent.stderr_text();
    }

    agent.signal(SIGTERM);
    auto status = agent.wait(10s);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->code, 0) << agent.stderr_text();
    EXPECT_NE(agent.stderr_text().find("checkpoint stored"), std::string::npos) << agent.stderr_text();
  }
  std::string err;
  EXPECT_EQ(pins.cleanup(&err), 0) << err;
}

// Runs `attempt` in a child that holds what the agent holds once started: uid 0, no capability,
// no_new_privs, and (if `confined`) the agent's Landlock domain. Returns the errno the attempt
// ended with (0: it succeeded), or -1 if the child could not get there.
int in_agent_like_child(bool confined, const std::function<int()>& attempt) {
  pid_t pid = fork();
  if (pid == 0) {
    try {
      netwatch::sandbox::drop_all_capabilities();
      if (confined && !netwatch::sandbox::forbid_filesystem_writes().empty()) _exit(255);
    } catch (...) {
      _exit(255);
    }
    _exit(attempt());
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status) == 255 ? -1 : WEXITSTATUS(status);
}

TEST(AgentPrivileges, cannot_write_the_hosts_cgroup_tree) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
  auto mount = netwatch::k8s::find_cgroup2_mount("/sys/fs/cgroup");
  ASSERT_TRUE(mount) << "no cgroup2 mount under /sys/fs/cgroup";
  // A cgroup of the test's own: uid 0 owns it like every cgroup, with the usual modes.
  const std::string dir = *mount + "/nwtest-privileges-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << strerror(errno);
  const std::string child = dir + "/child";
  auto make_child_cgroup = [&] { return mkdir(child.c_str(), 0755) == 0 ? 0 : errno; };
  auto write_procs = [&] {
    int fd = open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    close(fd);
    return 0;
  };

  // The control: capabilities alone do not protect root-owned files from their owner. This is what
  // a writable mount (a runtime ignoring recursiveReadOnly) would leave open.
  EXPECT_EQ(in_agent_like_child(false, make_child_cgroup), 0);
  EXPECT_EQ(in_agent_like_child(false, write_procs), 0);
  rmdir(child.c_str());
  // The agent as it runs: Landlock refuses both, whatever the mount allows.
  EXPECT_EQ(in_agent_like_child(true, make_child_cgroup), EACCES);
  EXPECT_EQ(in_agent_like_child(true, write_procs), EACCES);
  EXPECT_NE(access(child.c_str(), F_OK), 0);
  rmdir(child.c_str());
  EXPECT_EQ(rmdir(dir.c_str()), 0) << strerror(errno);
}

TEST(AgentPrivileges, names_a_seccomp_filter_that_denies_bpf) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
  const std::string line = "a seccomp filter denies bpf() and perf_event_open() although the capability is held";
  ChildProcess agent(
      with_chart_privileges({NW_DENY_BPF, NETWATCH_BINARY, "agent", "--listen", "127.0.0.1:62932", "--pin-dir", ""}));
  auto status = agent.wait(15s);
  ASSERT_TRUE(status) << "the agent started under a filter denying bpf()";
  EXPECT_NE(status->code, 0);
  EXPECT_NE(agent.stderr_text().find(line), std::string::npos) << agent.stderr_text();
  EXPECT_EQ(agent.stderr_text().find("Operation not permitted"), std::string::npos) << agent.stderr_text();

  ChildProcess doctor(with_chart_privileges({NW_DENY_BPF, NETWATCH_BINARY, "doctor"}));
  ASSERT_TRUE(doctor.wait(60s));
  std::string out;
  for (const std::string& l : doctor.lines()) out += l + "\n";
  EXPECT_NE(out.find(line), std::string::npos) << out << doctor.stderr_text();

  // The negative control: without the filter neither says so.
  ChildProcess clean(with_chart_privileges({NETWATCH_BINARY, "doctor"}));
  ASSERT_TRUE(clean.wait(60s));
  out.clear();
  for (const std::string& l : clean.lines()) out += l + "\n";
  EXPECT_EQ(out.find("seccomp filter denies"), std::string::npos) << out;
}

// perf_event_open() alone is needed only by the tracepoint fallback and the perf buffer: the agent
// warns and runs on tp_btf with the ring buffer.
TEST(AgentPrivileges, runs_when_only_perf_event_open_is_denied) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
  const uint16_t port = 62933;
  ChildProcess agent(
      with_chart_privileges({NW_DENY_BPF, "--only-perf-event-open", NETWATCH_BINARY, "agent", "--listen",
                             "127.0.0.1:" + std::to_string(port), "--status-interval", "0", "--pin-dir", ""}));
  ASSERT_TRUE(wait_healthy(agent, port)) << agent.stderr_text();
  agent.signal(SIGTERM);
  ASSERT_TRUE(agent.wait(10s));
  EXPECT_NE(agent.stderr_text().find("a seccomp filter denies perf_event_open() although the capability is held"),
            std::string::npos)
      << agent.stderr_text();
}

}  // namespace
}  // namespace nwtest
