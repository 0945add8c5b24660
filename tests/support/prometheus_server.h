// A real Prometheus server (/usr/bin/prometheus, Debian's package) on loopback, in a directory
// of its own, scraping the real agent every second as job "netwatch" (the job the chart's alert
// rules select on, metrics.job) and, given a rules file, evaluating it every second. Tests read
// it through its HTTP API: instant queries, the rules it loaded and the alerts it holds.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/child_process.h"

namespace nwtest {

// One alert as /api/v1/alerts reports it: state is "pending" or "firing".
struct PrometheusAlert {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string state;
  std::string active_at;
  double value = 0;

  std::string label(const std::string& name) const {
    auto it = labels.find(name);
    return it == labels.end() ? "" : it->second;
  }
};
std::ostream& operator<<(std::ostream& os, const PrometheusAlert& alert);

class PrometheusServer {
 public:
  static constexpr const char* kJob = "netwatch";

  // Starts Prometheus on 127.0.0.1:`port` (scrape and evaluation interval 1 s) scraping
  // 127.0.0.1:`agent_port`, with `rules_file` as its only rule file when not empty, and waits
  // for /-/ready. Throws when it does not start. native_histograms: run with
  // --enable-feature=native-histograms (it then asks for the protobuf exposition).
  PrometheusServer(uint16_t port, uint16_t agent_port, const std::string& rules_file = "",
                   bool native_histograms = false);
  ~PrometheusServer();  // SIGTERM (SIGKILL after 10 s), then removes its directory
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  uint16_t port() const { return port_; }

  // GET /api/v1/<path_and_query>; returns its "data". Throws on an HTTP or API error, or when
  // Prometheus has exited.
  nlohmann::json api(const std::string& path_and_query);
  // The result vector of an instant query.
  nlohmann::json query_vector(const std::string& promql);
  // The value of the first element of an instant query's result; nullopt while the result is
  // empty or the query fails.
  std::optional<double> query(const std::string& promql);
  // /api/v1/alerts: every pending and firing alert.
  std::vector<PrometheusAlert> alerts();
  // The alerting or recording rule `name` as /api/v1/rules reports it (query, duration in
  // seconds, health, ...); null when no loaded group has it.
  nlohmann::json rule(const std::string& name);

  static std::string url_encode(const std::string& s);

 private:
  void check_running();

  std::filesystem::path dir_;
  uint16_t port_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace nwtest
