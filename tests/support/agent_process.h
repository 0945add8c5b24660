// The real `netwatch agent` as a child process, and what tests read from it: /metrics parsed
// into samples, /api/v1/connections as JSON.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/child_process.h"

namespace nwtest {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses Prometheus text exposition (what /metrics serves) into samples.
std::vector<Sample> parse_exposition(const std::string& text);
// The value of the one sample named `name` whose labels include `labels`; nullopt if none.
std::optional<double> find_sample(const std::vector<Sample>& samples, const std::string& name,
                                  const std::map<std::string, std::string>& labels);

// HTTP GET on loopback; returns the status code (0 when no answer came: body then says why).
int http_get(const std::string& host, uint16_t port, const std::string& path, std::string* body);

// A pin directory of a test's own under /sys/fs/bpf; `netwatch cleanup` removes it on
// destruction, so a failed assertion leaves no program attached.
class PinDirForTest {
 public:
  PinDirForTest();
  ~PinDirForTest();
  PinDirForTest(const PinDirForTest&) = delete;
  PinDirForTest& operator=(const PinDirForTest&) = delete;
  const std::string& path() const { return path_; }
  // Runs `netwatch cleanup --pin-dir path`; returns its exit code.
  int cleanup(std::string* stderr_text = nullptr) const;

 private:
  std::string path_;
};

class AgentProcess {
 public:
  // Starts `netwatch agent --listen <host>:<port>` plus `extra` flags and waits for /healthz.
  // host is numeric: "127.0.0.1" or "::1". Without --pin-dir in `extra` the agent pins to a
  // directory of its own, removed when it stops.
  AgentProcess(uint16_t port, const std::vector<std::string>& extra = {}, const std::string& host = "127.0.0.1");
  ~AgentProcess();

  // SIGTERM, and the exit status (nullopt: still running after 10 s).
  std::optional<ExitStatus> stop();
  uint16_t port() const { return port_; }
  std::string metrics_text();
  std::vector<Sample> metrics() { return parse_exposition(metrics_text()); }
  nlohmann::json connections();
  ChildProcess& process() { return *child_; }

 private:
  uint16_t port_;
  std::string host_;
  std::unique_ptr<PinDirForTest> own_pins_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace nwtest
