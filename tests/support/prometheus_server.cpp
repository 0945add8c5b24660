#include "tests/support/prometheus_server.h"

#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <stdexcept>

#include "tests/support/agent_process.h"

namespace nwtest {

using namespace std::chrono_literals;

std::ostream& operator<<(std::ostream& os, const PrometheusAlert& alert) {
  os << alert.state << " {";
  const char* sep = "";
  for (const auto& [k, v] : alert.labels) {
    os << sep << k << "=\"" << v << '"';
    sep = ", ";
  }
  return os << "} value " << alert.value << " since " << alert.active_at;
}

PrometheusServer::PrometheusServer(uint16_t port, uint16_t agent_port, const std::string& rules_file,
                                   bool native_histograms)
    : dir_(std::filesystem::temp_directory_path() /
           ("nw-prometheus-" + std::to_string(getpid()) + "-" + std::to_string(port))),
      port_(port) {
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  {
    std::ofstream config(dir_ / "prometheus.yml");
    config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n";
    if (!rules_file.empty()) config << "rule_files:\n  - '" << std::filesystem::absolute(rules_file).string() << "'\n";
    config << "scrape_configs:\n  - job_name: " << kJob << "\n    static_configs:\n"
           << "      - targets: ['127.0.0.1:" << agent_port << "']\n";
    if (!config) throw std::runtime_error("cannot write " + (dir_ / "prometheus.yml").string());
  }
  std::vector<std::string> argv = {"/usr/bin/prometheus", "--config.file=" + (dir_ / "prometheus.yml").string(),
                                   "--storage.tsdb.path=" + (dir_ / "data").string(),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"};
  if (native_histograms) argv.push_back("--enable-feature=native-histograms");
  child_ = std::make_unique<ChildProcess>(argv);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (http_get("127.0.0.1", port, "/-/ready", nullptr) != 200) {
    if (std::chrono::steady_clock::now() > deadline || child_->wait(100ms))
      throw std::runtime_error("prometheus did not start: " + child_->stderr_text());
  }
}

PrometheusServer::~PrometheusServer() {
  try {
    child_->signal(SIGTERM);
  } catch (const std::exception&) {  // it has exited already
  }
  child_->wait(10s);
  child_.reset();  // SIGKILL if it is still running
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void PrometheusServer::check_running() {
  child_->read_lines(0ms);  // drains its stdout and stderr, so it never blocks on a full pipe
  if (auto status = child_->wait(0ms))
    throw std::runtime_error("prometheus exited (code " + std::to_string(status->code) + "): " + child_->stderr_text());
}

nlohmann::json PrometheusServer::api(const std::string& path_and_query) {
  check_running();
  std::string body;
  int status = http_get("127.0.0.1", port_, "/api/v1/" + path_and_query, &body);
  if (status != 200)
    throw std::runtime_error("prometheus /api/v1/" + path_and_query + " answered " + std::to_string(status) + ": " + body);
  auto j = nlohmann::json::parse(body);
  if (j.value("status", "") != "success") throw std::runtime_error("prometheus /api/v1/" + path_and_query + ": " + body);
  return j["data"];
}

nlohmann::json PrometheusServer::query_vector(const std::string& promql) {
  return api("query?query=" + url_encode(promql))["result"];
}

std::optional<double> PrometheusServer::query(const std::string& promql) {
  std::string body;
  if (http_get("127.0.0.1", port_, "/api/v1/query?query=" + url_encode(promql), &body) != 200) return {};
  auto j = nlohmann::json::parse(body);
  const auto& result = j["data"]["result"];
  if (result.empty()) return {};
  return std::stod(result[0]["value"][1].get<std::string>());
}

std::vector<PrometheusAlert> PrometheusServer::alerts() {
  std::vector<PrometheusAlert> out;
  const nlohmann::json data = api("alerts");  // a named copy: a range-for over api(...)[...] would dangle
  for (const auto& a : data["alerts"]) {
    PrometheusAlert alert;
    alert.labels = a.value("labels", std::map<std::string, std::string>{});
    alert.annotations = a.value("annotations", std::map<std::string, std::string>{});
    alert.state = a.value("state", "");
    alert.active_at = a.value("activeAt", "");
    alert.value = std::stod(a.value("value", "0"));
    out.push_back(std::move(alert));
  }
  return out;
}

nlohmann::json PrometheusServer::rule(const std::string& name) {
  const nlohmann::json data = api("rules");
  for (const auto& group : data["groups"])
    for (const auto& r : group["rules"])
      if (r.value("name", "") == name) return r;
  return nullptr;
}

std::string PrometheusServer::url_encode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace nwtest
