// `netwatch agent`: its flags, checked and turned into AgentOptions for the daemon
// (daemon/agent.h), which loads the probes, aggregates and serves /metrics, /api/v1/connections
// and /healthz.
#include <memory>

#include "cli/command.h"
#include "cli/json_config.h"
#include "cli/probe_flags.h"
#include "daemon/agent.h"
#include "kernel/pin_dir.h"
#include "util/log.h"

namespace netwatch::cli {
namespace {

struct AgentFlags {
  ProbeFlags probe;
  std::string listen = "127.0.0.1:9464";
  size_t max_connections = 65536;
  size_t max_series = aggregate::AggregatorConfig{}.max_series;
  size_t max_flows = 0;  // deprecated: the budget is in series
  size_t max_new_flows_per_minute = aggregate::AggregatorConfig{}.churn_new_flows_per_minute;
  size_t max_workloads = 4096;
  std::string connection_idle = "5m";
  std::string flow_idle = "10m";
  std::string publish_interval = "1s";
  std::string status_interval = "10s";
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string pod_log_dir = "/var/log/pods";
  std::string container_log_dir;  // empty: "containers" beside pod_log_dir
  bool cgroup_root_given = false;
  std::string pin_dir = kernel::PinDir::kDefault;
  std::string tls_cert, tls_key;
  std::string basic_auth_user, basic_auth_password_file;
  serve::HttpLimits http;
  std::string http_head_timeout = "5s", http_idle_timeout = "10s";
};

uint64_t duration_flag(const std::string& flag, const std::string& value, uint64_t min_ns) {
  auto ns = parse_duration_ns(value);
  if (!ns || *ns < min_ns)
    throw util::FatalError("--" + flag + " '" + value + "' is not a duration of at least " +
                               std::to_string(min_ns / 1000000) + "ms (e.g. 30s, 5m)",
                           util::kExitUsage);
  return *ns;
}

daemon::AgentOptions agent_options(const AgentFlags& flags) {
  daemon::AgentOptions options;
  auto listen = util::parse_listen_address(flags.listen);
  if (!listen)
    throw util::FatalError("--listen '" + flags.listen + "' is not HOST:PORT with a numeric IPv4 or [IPv6] host",
                           util::kExitUsage);
  options.listen = *listen;
  if (flags.max_connections < 1 || flags.max_workloads < 1)
    throw util::FatalError("--max-connections and --max-workloads must be at least 1", util::kExitUsage);
  if (flags.max_series < aggregate::kMinSeriesBudget)
    throw util::FatalError("--max-series must be at least " + std::to_string(aggregate::kMinSeriesBudget) +
                               " (the agent's own series and the catch-all flows need room)",
                           util::kExitUsage);
  if (flags.max_flows != 0 && flags.max_flows < 10)
    throw util::FatalError("--max-flows must be at least 10; it is deprecated: set --max-series instead",
                           util::kExitUsage);
  if (flags.max_flows != 0)
    util::log_warn("--max-flows is deprecated: the budget is counted in series now (--max-series, default 10000); "
                   "--max-flows " +
                   std::to_string(flags.max_flows) + " still caps the flows as well");
  aggregate::AggregatorConfig& config = options.aggregation;
  config.max_connections = flags.max_connections;
  config.max_series = flags.max_series;
  config.max_flows = flags.max_flows;
  config.churn_new_flows_per_minute = flags.max_new_flows_per_minute;
  config.max_workloads = flags.max_workloads;
  config.connection_idle_ns = duration_flag("connection-idle-timeout", flags.connection_idle, 1'000'000'000);
  config.flow_idle_ns = duration_flag("flow-idle-timeout", flags.flow_idle, 1'000'000'000);
  options.publish_interval_ns = duration_flag("publish-interval", flags.publish_interval, 10'000'000);
  options.status_interval_ns =
      flags.status_interval == "0" ? 0 : duration_flag("status-interval", flags.status_interval, 1'000'000'000);
  options.probes = flags.probe.probe_options();
  options.probes.pin_dir = flags.pin_dir;
  options.reader = flags.probe.reader_options();
  options.cgroup_root = flags.cgroup_root;
  options.cgroup_root_given = flags.cgroup_root_given;
  options.pod_log_dir = flags.pod_log_dir;
  options.container_log_dir = flags.container_log_dir;
  options.tls_cert = flags.tls_cert;
  options.tls_key = flags.tls_key;
  options.basic_auth_user = flags.basic_auth_user;
  options.basic_auth_password_file = flags.basic_auth_password_file;
  options.http_limits = flags.http;
  options.http_limits.head_timeout_ns = duration_flag("http-head-timeout", flags.http_head_timeout, 100'000'000);
  options.http_limits.idle_timeout_ns = duration_flag("http-idle-timeout", flags.http_idle_timeout, 1'000'000'000);
  if (std::string why = serve::validate_http_limits(options.http_limits); !why.empty())
    throw util::FatalError(why, util::kExitUsage);
  return options;
}

// A count: digits only. CLI11 would read "-1" into a size_t as its largest value.
const CLI::Validator kCount(
    [](std::string& v) {
      return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos
                 ? std::string()
                 : "'" + v + "' is not a whole number";
    },
    "COUNT");

}  // namespace

Command add_agent_command(CLI::App& parent) {
  auto flags = std::make_shared<AgentFlags>();
  CLI::App* app = parent.add_subcommand("agent", "Run the daemon: aggregate and serve metrics (needs root)");
  // CLI11 reads config files only for the top-level app: --config lives there, keyed to "agent".
  parent.config_formatter(std::make_shared<JsonConfig>("agent"));
  parent.set_config("--config", "", "agent: JSON file of flag names to values; command-line flags win");
  parent.allow_config_extras(CLI::config_extras_mode::error);
  app->fallthrough();
  app->add_option("--listen", flags->listen, "HTTP address, HOST:PORT or [IPv6]:PORT")->capture_default_str();
  app->add_option("--max-connections", flags->max_connections,
                  "Connection table capacity (least recently active evicted)")
      ->check(kCount)
      ->capture_default_str();
  app->add_option("--max-series", flags->max_series,
                  "Series budget: most series /metrics exports; past 80% new flows fold detail")
      ->check(kCount)
      ->capture_default_str();
  app->add_option("--max-new-flows-per-minute", flags->max_new_flows_per_minute,
                  "Churn breaker: past this many new flows in a minute, new flows fold their peer (0: off)")
      ->check(kCount)
      ->capture_default_str();
  app->add_option("--max-flows", flags->max_flows, "Deprecated (use --max-series): also cap the exported flows")
      ->check(kCount);
  app->add_option("--max-workloads", flags->max_workloads, "Most distinct pod label sets")
      ->check(kCount)
      ->capture_default_str();
  app->add_option("--connection-idle-timeout", flags->connection_idle, "Drop a connection with no event for this long")
      ->capture_default_str();
  app->add_option("--flow-idle-timeout", flags->flow_idle, "Drop a flow with no connection or update for this long")
      ->capture_default_str();
  app->add_option("--publish-interval", flags->publish_interval, "How often scrapes see new data")
      ->capture_default_str();
  app->add_option("--status-interval", flags->status_interval, "How often a status line is logged (0: never)")
      ->capture_default_str();
  app->add_option("--cgroup-root", flags->cgroup_root, "Where to find the cgroup2 mount (pod labels)")
      ->capture_default_str()
      ->each([flags](const std::string&) { flags->cgroup_root_given = true; });
  app->add_option("--pod-log-dir", flags->pod_log_dir, "The kubelet's pod log directory (namespace, pod names)")
      ->capture_default_str();
  app->add_option("--container-log-dir", flags->container_log_dir,
                  "The kubelet's container log links (container names); default: containers/ beside --pod-log-dir");
  app->add_option("--tls-cert", flags->tls_cert, "Serve HTTPS with this PEM certificate (with --tls-key)");
  app->add_option("--tls-key", flags->tls_key, "The certificate's PEM private key");
  app->add_option("--basic-auth-user", flags->basic_auth_user, "Require HTTP basic auth as this user (not /healthz)");
  app->add_option("--basic-auth-password-file", flags->basic_auth_password_file,
                  "File whose first line is the basic auth password (kept out of argv)");
  app->add_option("--http-max-connections", flags->http.max_connections,
                  "HTTP connections open at once; more are closed at accept")
      ->capture_default_str();
  app->add_option("--http-max-connections-per-client", flags->http.max_connections_per_client,
                  "HTTP connections open at once from one client address")
      ->capture_default_str();
  app->add_option("--http-head-timeout", flags->http_head_timeout,
                  "Deadline for a whole request head (TLS handshake included)")
      ->capture_default_str();
  app->add_option("--http-idle-timeout", flags->http_idle_timeout, "Close a keep-alive connection idle this long")
      ->capture_default_str();
  app->add_option("--http-max-uri-bytes", flags->http.max_uri_bytes, "Longest request URI (longer: 414)")
      ->capture_default_str();
  app->add_option("--http-max-header-bytes", flags->http.max_header_bytes,
                  "Most bytes of request headers (more: 431)")
      ->capture_default_str();
  app->add_option("--pin-dir", flags->pin_dir,
                  "bpffs directory where probes, maps and a checkpoint outlive a restart ('': pin nothing)")
      ->capture_default_str();
  add_probe_flags(*app, flags->probe);
  return {app, [flags] { return daemon::run_agent(agent_options(*flags)); }};
}

}  // namespace netwatch::cli
