// The agent's optional HTTPS and basic auth, checked with curl like a scraper would.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

// curl's HTTP status for url ("000" when no HTTP exchange happened), with extra curl arguments.
std::string curl_status(const std::string& args) {
  std::string cmd = "curl -s -o /dev/null -w '%{http_code}' --max-time 5 " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[16] = {};
  if (p) {
    if (!fgets(buf, sizeof(buf), p)) buf[0] = '\0';
    pclose(p);
  }
  return buf;
}

TEST(AgentSecurity, https_and_basic_auth_guard_everything_but_healthz) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("nw-tls-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string password_file = (dir / "password").string();
  ASSERT_EQ(system(("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext "
                    "subjectAltName=IP:127.0.0.1 -days 1 -keyout " + key + " -out " + cert + " 2>/dev/null")
                       .c_str()),
            0);
  std::ofstream(password_file) << "s3cret\n";

  const uint16_t port = 62901;
  ChildProcess agent({NETWATCH_BINARY, "agent", "--listen", "127.0.0.1:" + std::to_string(port), "--status-interval",
                      "0", "--tls-cert", cert, "--tls-key", key, "--basic-auth-user", "prom",
                      "--basic-auth-password-file", password_file, "--pin-dir", ""});
  const std::string base = "https://127.0.0.1:" + std::to_string(port);
  const std::string tls = "--cacert " + cert + " ";
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (curl_status(tls + base + "/healthz") != "200" && std::chrono::steady_clock::now() < deadline)
    ASSERT_FALSE(agent.wait(100ms)) << agent.stderr_text();

  EXPECT_EQ(curl_status(tls + base + "/healthz"), "200");  // kubelet probes need no password
  EXPECT_EQ(curl_status(tls + "-u prom:s3cret " + base + "/metrics"), "200");
  EXPECT_EQ(curl_status(tls + "-u prom:s3cret " + base + "/api/v1/connections"), "200");
  EXPECT_EQ(curl_status(tls + base + "/metrics"), "401");
  EXPECT_EQ(curl_status(tls + "-u prom:wrong " + base + "/metrics"), "401");
  EXPECT_EQ(curl_status(tls + "-u other:s3cret " + base + "/api/v1/connections"), "401");
  EXPECT_EQ(curl_status("http://127.0.0.1:" + std::to_string(port) + "/metrics"), "000");  // no plain HTTP
  EXPECT_EQ(curl_status(base + "/healthz"), "000");  // an unknown CA is refused: the certificate is checked
  EXPECT_EQ(curl_status(tls + "-u prom:s3cret -d '' " + base + "/metrics"), "404");  // read-only

  agent.signal(SIGTERM);
  auto status = agent.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nwtest
