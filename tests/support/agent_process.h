// The real `netwatch agent` as a child process of a test or a benchmark, and what they read from
// it: /metrics as text or parsed into samples, /api/v1/connections as JSON.
#pragma once

#include <atomic>
#include <chrono>
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
// Every sample named `name` whose labels include `labels`, summed (0 if none).
double sum_samples(const std::vector<Sample>& samples, const std::string& name,
                   const std::map<std::string, std::string>& labels);

// HTTP GET on loopback; returns the status code (0 when no answer came: body then says why).
int http_get(const std::string& host, uint16_t port, const std::string& path, std::string* body,
             std::chrono::seconds read_timeout = std::chrono::seconds(10));

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

// How an agent is started besides its `agent` flags; the defaults are the tests'.
struct AgentOptions {
  std::string binary = NETWATCH_BINARY;
  std::string host = "127.0.0.1";           // numeric: "127.0.0.1" or "::1"
  std::vector<std::string> global_flags;    // before `agent`, e.g. {"--log-level", "warn"}
  ChildOptions child;                       // output to pipes (the tests) or a memory file
  std::chrono::seconds ready_timeout{15};   // for /healthz to answer 200
  std::chrono::seconds http_timeout{10};    // read timeout of each GET
  const std::atomic<bool>* stop = nullptr;  // set: stop waiting for /healthz and throw
};

class AgentProcess {
 public:
  // Starts `netwatch agent --listen <host>:<port> --status-interval 0` plus `extra` flags and
  // waits for /healthz; throws std::runtime_error with the agent's output when it exits first or
  // is not ready in time. Without --pin-dir in `extra` the agent pins to a directory of its own,
  // removed when it stops.
  AgentProcess(uint16_t port, const std::vector<std::string>& extra, const AgentOptions& options);
  AgentProcess(uint16_t port, const std::vector<std::string>& extra = {}, const std::string& host = "127.0.0.1");
  ~AgentProcess();

  // SIGTERM, and the exit status (nullopt: still running after 10 s).
  std::optional<ExitStatus> stop();
  uint16_t port() const { return port_; }
  pid_t pid() const { return child_->pid(); }
  // GET on the agent; throws std::runtime_error unless it answers 200.
  std::string get(const std::string& path) const;
  std::string metrics_text() const { return get("/metrics"); }
  std::vector<Sample> metrics() { return parse_exposition(metrics_text()); }
  nlohmann::json connections();
  ChildProcess& process() { return *child_; }

 private:
  uint16_t port_;
  AgentOptions options_;
  std::unique_ptr<PinDirForTest> own_pins_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace nwtest
