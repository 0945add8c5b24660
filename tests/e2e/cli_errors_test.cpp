// Bad input to the real binary: one line on stderr saying what is wrong, a non-zero exit, and
// nothing of netwatch's left loaded.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>

#include "tests/support/agent_process.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

struct Result {
  int code;
  std::string err;
};

Result run_program(const std::vector<std::string>& argv) {
  ChildProcess child(argv);
  auto status = child.wait(20s);
  if (!status) return {-1, "still running: " + child.stderr_text()};
  return {status->exited ? status->code : 128 + status->signal, child.stderr_text()};
}

Result run(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {NETWATCH_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv);
}

int lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// netwatch's own programs currently loaded anywhere on the machine.
int netwatch_programs() {
  FILE* p = popen(
      "bpftool prog show 2>/dev/null | grep -cE 'name (btf|tp)_(set_state|retransmit|retransmit_synack|probe) '", "r");
  int n = 0;
  if (p) {
    if (fscanf(p, "%d", &n) != 1) n = 0;
    pclose(p);
  }
  return n;
}

class CliErrors : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test"; }
  void expect_usage_error(const std::vector<std::string>& args, const std::string& says) {
    Result r = run(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
};

TEST_F(CliErrors, unknown_flag) {
  expect_usage_error({"agent", "--bogus"}, "--bogus");
}

TEST_F(CliErrors, bad_listen_address) {
  expect_usage_error({"agent", "--listen", "1.2.3:99"}, "--listen");
}

TEST_F(CliErrors, bad_values) {
  expect_usage_error({"agent", "--max-flows", "3"}, "--max-flows");
  expect_usage_error({"agent", "--max-series", "999"}, "--max-series");
  expect_usage_error({"agent", "--max-series", "-5"}, "--max-series");
  expect_usage_error({"agent", "--max-new-flows-per-minute", "-1"}, "--max-new-flows-per-minute");
  expect_usage_error({"agent", "--rtt-interval", "5"}, "--rtt-interval");
  expect_usage_error({"agent", "--http-max-connections", "0"}, "--http-max-connections");
  expect_usage_error({"agent", "--http-max-connections-per-client", "500"}, "--http-max-connections-per-client");
  expect_usage_error({"agent", "--http-head-timeout", "10ms"}, "--http-head-timeout");
  expect_usage_error({"agent", "--http-max-header-bytes", "12"}, "--http-max-header-bytes");
  expect_usage_error({"trace", "--type", "bogus"}, "--type");
  expect_usage_error({"agent", "--attach", "kprobe"}, "--attach");
}

TEST_F(CliErrors, invalid_config_file) {
  std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/nw-unknown.json") << R"({"listen": "127.0.0.1:62700", "max-flow": 3})";
  std::ofstream(dir + "/nw-broken.json") << R"({"listen": )";
  expect_usage_error({"agent", "--config", dir + "/nw-unknown.json"}, "max-flow");
  expect_usage_error({"agent", "--config", dir + "/nw-broken.json"}, "JSON");
  expect_usage_error({"agent", "--config", dir + "/nw-missing.json"}, "nw-missing.json");
}

TEST_F(CliErrors, port_in_use_leaves_nothing_attached) {
  Fd taken = listen_on(AF_INET, 62701);
  int before = netwatch_programs();
  expect_usage_error({"agent", "--listen", "127.0.0.1:62701"}, "Address already in use");
  EXPECT_EQ(netwatch_programs(), before);
}

TEST_F(CliErrors, not_root) {
  ChildProcess child({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                      NETWATCH_BINARY, "agent", "--listen", "127.0.0.1:62702"});
  auto status = child.wait(20s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 2);
  EXPECT_EQ(lines(child.stderr_text()), 1) << child.stderr_text();
  EXPECT_NE(child.stderr_text().find("root"), std::string::npos) << child.stderr_text();
}

TEST_F(CliErrors, cgroup_root_without_cgroup2) {
  expect_usage_error({"agent", "--listen", "127.0.0.1:62703", "--cgroup-root", "/proc"}, "cgroup2");
}

// The agent in a mount namespace of its own, prepared by `setup` (shell commands), optionally
// without CAP_SYS_ADMIN: a node or container where the agent may load programs but not mount.
Result run_in_mount_namespace(const std::string& setup, bool may_mount, const std::vector<std::string>& args) {
  std::string command = setup + "; exec ";
  if (!may_mount) command += "setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin ";
  command += NETWATCH_BINARY;
  for (const std::string& a : args) command += " '" + a + "'";
  return run_program({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", command});
}

void expect_environment_error(const Result& r, const std::string& says) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
}

TEST_F(CliErrors, no_btf) {
  int before = netwatch_programs();
  // A kernel without BTF has no /sys/kernel/btf/vmlinux.
  Result r = run_in_mount_namespace("mount -t tmpfs none /sys/kernel/btf", true,
                                    {"agent", "--listen", "127.0.0.1:62704", "--pin-dir", ""});
  expect_environment_error(r, "kernel has no BTF");
  EXPECT_EQ(netwatch_programs(), before);
}

TEST_F(CliErrors, bpffs_not_mountable) {
  int before = netwatch_programs();
  // bpffs not mounted, and no CAP_SYS_ADMIN to mount it (CAP_BPF and CAP_PERFMON remain).
  Result r =
      run_in_mount_namespace("umount -l /sys/fs/bpf 2>/dev/null", false, {"agent", "--listen", "127.0.0.1:62705"});
  expect_environment_error(r, "bpffs is not mounted and mounting it at /sys/fs/bpf failed");
  EXPECT_EQ(netwatch_programs(), before);
}

TEST_F(CliErrors, tracefs_missing) {
  int before = netwatch_programs();
  // The tracepoint variant needs tracefs: unmounted, and not mountable without CAP_SYS_ADMIN.
  Result r = run_in_mount_namespace(
      "umount -l /sys/kernel/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null", false,
      {"agent", "--listen", "127.0.0.1:62706", "--attach", "tracepoint", "--pin-dir", ""});
  expect_environment_error(r, "tracefs is not mounted and mounting it at /sys/kernel/tracing failed");
  EXPECT_EQ(netwatch_programs(), before);
}

}  // namespace
}  // namespace nwtest
