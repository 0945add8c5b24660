// `netwatch agent`: the daemon. Loads the probes, aggregates per connection and flow, and
// serves /metrics, /api/v1/connections and /healthz.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "agent/aggregator.h"
#include "agent/capabilities.h"
#include "agent/checkpoint.h"
#include "agent/event_reader.h"
#include "agent/http_server.h"
#include "agent/kernel_features.h"
#include "agent/landlock.h"
#include "agent/log.h"
#include "agent/pod_resolver.h"
#include "agent/seccomp.h"
#include "agent/util/clock.h"
#include "cli/command.h"
#include "cli/json_config.h"
#include "cli/probe_flags.h"

namespace netwatch::cli {
namespace {

struct AgentFlags {
  ProbeFlags probe;
  std::string listen = "127.0.0.1:9464";
  size_t max_connections = 65536;
  size_t max_flows = 2000;
  size_t max_workloads = 4096;
  std::string connection_idle = "5m";
  std::string flow_idle = "10m";
  std::string publish_interval = "1s";
  std::string status_interval = "10s";
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string pod_log_dir = "/var/log/pods";
  std::string container_log_dir;  // empty: "containers" beside pod_log_dir
  bool cgroup_root_given = false;
  std::string pin_dir = PinDir::kDefault;
  std::string tls_cert, tls_key;
  std::string basic_auth_user, basic_auth_password_file;
};

HttpSecurity http_security(const AgentFlags& flags) {
  HttpSecurity s;
  if (flags.tls_cert.empty() != flags.tls_key.empty())
    throw FatalError("--tls-cert and --tls-key go together", kExitUsage);
  s.tls_cert_file = flags.tls_cert;
  s.tls_key_file = flags.tls_key;
  if (flags.basic_auth_user.empty() != flags.basic_auth_password_file.empty())
    throw FatalError("--basic-auth-user and --basic-auth-password-file go together", kExitUsage);
  if (!flags.basic_auth_user.empty()) {
    std::ifstream file(flags.basic_auth_password_file);
    if (!file || !std::getline(file, s.basic_auth_password) || s.basic_auth_password.empty())
      throw FatalError("cannot read a password from the first line of " + flags.basic_auth_password_file, kExitUsage);
    s.basic_auth_user = flags.basic_auth_user;
    if (s.tls_cert_file.empty()) log_warn("basic auth without TLS sends the password in clear text");
  }
  return s;
}

// Pod labels need the cgroup2 mount: off, with a warning, when the default root has none;
// a user who named a root gets an error instead.
std::unique_ptr<PodResolver> make_pod_resolver(const AgentFlags& flags) {
  auto mount = find_cgroup2_mount(flags.cgroup_root);
  if (!mount) {
    std::string what = "no cgroup2 mount at or below " + flags.cgroup_root;
    if (flags.cgroup_root_given)
      throw FatalError(what + " (--cgroup-root): pod labels need cgroup v2; point it at the cgroup2 mount", kExitUsage);
    log_warn(what + ": pod labels are off");
    return nullptr;
  }
  PodResolverOptions options;
  options.cgroup2_dir = *mount;
  options.pod_log_dir = flags.pod_log_dir;
  options.container_log_dir = flags.container_log_dir;
  return std::make_unique<PodResolver>(options);
}

uint64_t duration_flag(const std::string& flag, const std::string& value, uint64_t min_ns) {
  auto ns = parse_duration_ns(value);
  if (!ns || *ns < min_ns)
    throw FatalError("--" + flag + " '" + value + "' is not a duration of at least " +
                         std::to_string(min_ns / 1000000) + "ms (e.g. 30s, 5m)",
                     kExitUsage);
  return *ns;
}

// A snapshot of the aggregation with the agent's health, listing `connection_limit` connections.
std::shared_ptr<Snapshot> take_snapshot(const Aggregator& aggregator, const ProbeSet& probes, const EventReader& reader,
                                        const PodResolver* pods, const CounterBase& base, const WallClock& clock,
                                        const std::string& node, size_t connection_limit) {
  uint64_t now = monotonic_ns();
  std::shared_ptr<Snapshot> s = aggregator.snapshot(now, clock.to_unix_ns(now), connection_limit);
  s->node = node;
  AgentHealth& h = s->health;
  h.kernel = probes.counters();
  h.drains = reader.drains();
  h.decode_errors = reader.decode_errors();
  h.variant = variant_name(probes.variant());
  h.transport = transport_name(probes.transport());
  h.programs = probes.program_stats();
  if (pods) h.pods = pods->stats();
  base.add_to(h);
  return s;
}

// Continues from the previous agent's clean stop, if it left a checkpoint. Returns the bases
// for the counters this process restarts from zero.
CounterBase continue_from_checkpoint(const ProbeSet& probes, Aggregator& aggregator) {
  CounterBase base;
  PinDir* pins = probes.pins();
  if (!pins) return base;
  std::optional<std::vector<uint8_t>> bytes = pins->take_checkpoint();
  std::optional<Restored> restored = bytes ? restore_checkpoint(*bytes, aggregator) : std::nullopt;
  if (!restored) {
    if (probes.adopted())
      log_warn("the previous agent left no checkpoint (it did not stop cleanly): exported counters restart from zero");
    return base;
  }
  base = restored->base;
  if (probes.adopted()) {  // the kernel kept counting in the adopted maps and programs
    base.kernel = {};
    base.programs.clear();
  }
  log_info("continuing from the previous agent's checkpoint: " + std::to_string(restored->connections) +
           " connections, " + std::to_string(restored->flows) + " flows");
  return base;
}

// At a clean stop: what the next agent continues from.
void store_checkpoint(PinDir& pins, const Aggregator& aggregator, const Snapshot& last) {
  std::vector<uint8_t> bytes = save_checkpoint(aggregator, last.health);
  if (pins.store_checkpoint(bytes))
    log_info("checkpoint stored in " + pins.path() + " (" + std::to_string(bytes.size()) + " bytes)");
  else
    log_error("storing the checkpoint in " + pins.path() + " failed: the next agent's counters restart from zero");
}

int run_agent(const AgentFlags& flags) {
  auto listen = parse_listen_address(flags.listen);
  if (!listen)
    throw FatalError("--listen '" + flags.listen + "' is not HOST:PORT with a numeric IPv4 or [IPv6] host", kExitUsage);
  if (flags.max_connections < 1 || flags.max_flows < 10 || flags.max_workloads < 1)
    throw FatalError("--max-connections and --max-workloads must be at least 1, --max-flows at least 10", kExitUsage);
  AggregatorConfig config;
  config.max_connections = flags.max_connections;
  config.max_flows = flags.max_flows;
  config.max_workloads = flags.max_workloads;
  config.connection_idle_ns = duration_flag("connection-idle-timeout", flags.connection_idle, 1'000'000'000);
  config.flow_idle_ns = duration_flag("flow-idle-timeout", flags.flow_idle, 1'000'000'000);
  uint64_t publish_ns = duration_flag("publish-interval", flags.publish_interval, 10'000'000);
  uint64_t status_ns =
      flags.status_interval == "0" ? 0 : duration_flag("status-interval", flags.status_interval, 1'000'000'000);
  ProbeOptions probe_options = flags.probe.probe_options();
  probe_options.pin_dir = flags.pin_dir;
  ReaderOptions reader_options = flags.probe.reader_options();

  require_load_privileges();  // before anything is bound, mounted or logged
  if (SeccompDenial denial = seccomp_denial(); denial.bpf)
    throw FatalError(denial.message());
  else if (denial.any())
    log_warn(denial.message() + ": the tracepoint fallback and the perf buffer cannot work");
  require_btf();
  const char* node_env = std::getenv("NODE_NAME");
  const std::string node = node_env ? node_env : "";
  const std::string status_prefix = node.empty() ? "" : "node=" + node + " ";
  SnapshotStore store;
  HttpSecurity security = http_security(flags);
  HttpServer http(store, *listen, security);  // before the probes: a port in use leaves nothing attached
  install_stop_signals();
  std::unique_ptr<PodResolver> pods = make_pod_resolver(flags);
  auto probes = ProbeSet::start(probe_options);
  // Logged once the probes are up: a failing start says one line, its error.
  if (pods) log_info("pod labels from " + pods->options().cgroup2_dir + " and " + flags.pod_log_dir);
  Aggregator aggregator(
      config, pods ? WorkloadResolver([&pods](uint64_t cgroup) { return pods->resolve(cgroup); }) : WorkloadResolver{});
  const CounterBase base = continue_from_checkpoint(*probes, aggregator);
  EventReader reader(*probes, aggregator, reader_options);
  drop_all_capabilities();  // everything from here on goes through descriptors already held
  if (std::string why = forbid_filesystem_writes(); why.empty())
    log_info("no file can be written, created, removed or executed from here on (Landlock)");
  else
    log_warn(why + ": the agent's file writes are limited only by its mounts and uid");
  WallClock clock;
  // Periodic snapshots list no connections; /api/v1/connections asks for them (SnapshotStore).
  auto snapshot = [&](size_t connection_limit) {
    return take_snapshot(aggregator, *probes, reader, pods.get(), base, clock, node, connection_limit);
  };
  store.publish(snapshot(0));
  http.start();
  std::string host = listen->host.find(':') != std::string::npos ? "[" + listen->host + "]" : listen->host;
  log_info(std::string(security.tls_cert_file.empty() ? "serving http://" : "serving https://") + host + ":" +
           std::to_string(http.port()) + "/metrics and /api/v1/connections");

  uint64_t last_publish = monotonic_ns(), last_status = last_publish, events_at_status = 0;
  while (!g_stop) {
    reader.poll();
    uint64_t now = monotonic_ns();
    if (now - last_publish >= publish_ns) {
      aggregator.expire(now);
      store.publish(snapshot(0));
      last_publish = now;
    }
    if (auto limit = store.connections_wanted()) store.answer_connections(snapshot(*limit), *limit);
    if (status_ns && now - last_status >= status_ns) {
      uint64_t events = reader.records();
      KernelCounters k = probes->counters();
      char line[512];
      std::snprintf(line, sizeof(line), "%sconnections=%zu flows=%zu events/s=%.0f lost=%llu stage=%d",
                    status_prefix.c_str(), aggregator.connections().size(), aggregator.flows().size(),
                    double(events - events_at_status) * 1e9 / double(now - last_status),
                    static_cast<unsigned long long>(k.total_lost()), static_cast<int>(aggregator.flows().stage()));
      log_info(line);
      last_status = now;
      events_at_status = events;
    }
  }
  store.close();  // a handler waiting for connections answers now instead of at its timeout
  http.stop();
  if (PinDir* pins = probes->pins()) {
    reader.poll();  // what the ring holds now belongs to this agent's counts, not the next one's
    store_checkpoint(*pins, aggregator, *snapshot(0));
    log_info("stopping: the probes stay attached in " + pins->path() +
             " for the next agent (`netwatch cleanup` removes them)");
  } else {
    log_info("stopping: releasing probes");
  }
  return 0;
}

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
      ->capture_default_str();
  app->add_option("--max-flows", flags->max_flows, "Series budget: most flows exported before folding")
      ->capture_default_str();
  app->add_option("--max-workloads", flags->max_workloads, "Most distinct pod label sets")->capture_default_str();
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
  app->add_option("--pin-dir", flags->pin_dir,
                  "bpffs directory where probes, maps and a checkpoint outlive a restart ('': pin nothing)")
      ->capture_default_str();
  add_probe_flags(*app, flags->probe);
  return {app, [flags] { return run_agent(*flags); }};
}

}  // namespace netwatch::cli
