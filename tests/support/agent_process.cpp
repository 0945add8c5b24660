#include "tests/support/agent_process.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <sstream>
#include <thread>

namespace nwtest {

std::vector<Sample> parse_exposition(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    size_t brace = line.find('{'), space;
    if (brace != std::string::npos) {
      s.name = line.substr(0, brace);
      size_t end = line.find("} ", brace);
      std::string body = line.substr(brace + 1, end - brace - 1);
      size_t pos = 0;
      while (pos < body.size()) {  // name="value",... (netwatch's values hold no quotes)
        size_t eq = body.find("=\"", pos), close = body.find('"', eq + 2);
        s.labels[body.substr(pos, eq - pos)] = body.substr(eq + 2, close - eq - 2);
        pos = close + 2;
      }
      space = end + 1;
    } else {
      space = line.find(' ');
      s.name = line.substr(0, space);
    }
    s.value = std::stod(line.substr(space + 1));
    out.push_back(std::move(s));
  }
  return out;
}

namespace {
bool has_labels(const Sample& s, const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : labels) {
    auto it = s.labels.find(k);
    if (it == s.labels.end() || it->second != v) return false;
  }
  return true;
}
}  // namespace

std::optional<double> find_sample(const std::vector<Sample>& samples, const std::string& name,
                                  const std::map<std::string, std::string>& labels) {
  for (const Sample& s : samples)
    if (s.name == name && has_labels(s, labels)) return s.value;
  return std::nullopt;
}

double sum_samples(const std::vector<Sample>& samples, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
  double sum = 0;
  for (const Sample& s : samples)
    if (s.name == name && has_labels(s, labels)) sum += s.value;
  return sum;
}

int http_get(const std::string& host, uint16_t port, const std::string& path, std::string* body,
             std::chrono::seconds read_timeout) {
  httplib::Client client(host, port);
  client.set_connection_timeout(2);
  client.set_read_timeout(read_timeout.count());
  auto res = client.Get(path.c_str());
  if (!res) {  // no HTTP answer at all: say why, for the test's message
    if (body) *body = "no response: " + httplib::to_string(res.error());
    return 0;
  }
  if (body) *body = res->body;
  return res->status;
}

PinDirForTest::PinDirForTest() {
  static int n = 0;
  path_ = "/sys/fs/bpf/nwtest-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

PinDirForTest::~PinDirForTest() {
  cleanup();
}

int PinDirForTest::cleanup(std::string* stderr_text) const {
  ChildProcess cleanup({NETWATCH_BINARY, "cleanup", "--pin-dir", path_});
  std::optional<ExitStatus> status = cleanup.wait(std::chrono::seconds(10));
  if (stderr_text) *stderr_text = cleanup.stderr_text();
  return status && status->exited ? status->code : -1;
}

namespace {
AgentOptions on_host(const std::string& host) {
  AgentOptions options;
  options.host = host;
  return options;
}
}  // namespace

AgentProcess::AgentProcess(uint16_t port, const std::vector<std::string>& extra, const std::string& host)
    : AgentProcess(port, extra, on_host(host)) {}

AgentProcess::AgentProcess(uint16_t port, const std::vector<std::string>& extra, const AgentOptions& options)
    : port_(port), options_(options) {
  const std::string& host = options.host;
  std::string listen = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  std::vector<std::string> argv = {options.binary};
  argv.insert(argv.end(), options.global_flags.begin(), options.global_flags.end());
  argv.insert(argv.end(), {"agent", "--listen", listen, "--status-interval", "0"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (std::find(extra.begin(), extra.end(), "--pin-dir") == extra.end()) {
    own_pins_ = std::make_unique<PinDirForTest>();
    argv.insert(argv.end(), {"--pin-dir", own_pins_->path()});
  }
  child_ = std::make_unique<ChildProcess>(argv, options.child);
  auto deadline = std::chrono::steady_clock::now() + options.ready_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (options.stop && *options.stop) throw std::runtime_error("interrupted while the agent started");
    if (http_get(host, port, "/healthz", nullptr) == 200) {
      child_->read_lines(std::chrono::milliseconds(0));  // what it logged while starting, for the tests
      return;
    }
    if (auto status = child_->wait(std::chrono::milliseconds(100)))
      throw std::runtime_error("agent exited early (code " + std::to_string(status->code) + "): " + child_->output());
  }
  throw std::runtime_error("agent not ready after " + std::to_string(options.ready_timeout.count()) +
                           " s: " + child_->output());
}

AgentProcess::~AgentProcess() {
  stop();
}  // then own_pins_ cleans up

std::optional<ExitStatus> AgentProcess::stop() {
  if (auto status = child_->wait(std::chrono::milliseconds(0))) return status;  // stopped already
  child_->signal(SIGTERM);
  return child_->wait(std::chrono::seconds(10));
}

std::string AgentProcess::get(const std::string& path) const {
  std::string body;
  int status = http_get(options_.host, port_, path, &body, options_.http_timeout);
  if (status != 200)
    throw std::runtime_error(path + " answered " + std::to_string(status) + ": " + body +
                             "; the agent said: " + child_->output());
  return body;
}

nlohmann::json AgentProcess::connections() {
  return nlohmann::json::parse(get("/api/v1/connections"));
}

}  // namespace nwtest
