#include "daemon/agent.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "daemon/pipeline.h"
#include "daemon/stop_signals.h"
#include "kernel/kernel_features.h"
#include "k8s/pod_resolver.h"
#include "sandbox/capabilities.h"
#include "sandbox/landlock.h"
#include "sandbox/seccomp.h"
#include "serve/snapshot_store.h"
#include "util/log.h"

namespace netwatch::daemon {
namespace {

serve::HttpSecurity http_security(const AgentOptions& options) {
  serve::HttpSecurity s;
  if (options.tls_cert.empty() != options.tls_key.empty())
    throw util::FatalError("--tls-cert and --tls-key go together", util::kExitUsage);
  s.tls_cert_file = options.tls_cert;
  s.tls_key_file = options.tls_key;
  if (options.basic_auth_user.empty() != options.basic_auth_password_file.empty())
    throw util::FatalError("--basic-auth-user and --basic-auth-password-file go together", util::kExitUsage);
  if (!options.basic_auth_user.empty()) {
    std::ifstream file(options.basic_auth_password_file);
    if (!file || !std::getline(file, s.basic_auth_password) || s.basic_auth_password.empty())
      throw util::FatalError("cannot read a password from the first line of " + options.basic_auth_password_file,
                             util::kExitUsage);
    s.basic_auth_user = options.basic_auth_user;
    if (s.tls_cert_file.empty()) util::log_warn("basic auth without TLS sends the password in clear text");
  }
  return s;
}

std::unique_ptr<k8s::PodResolver> make_pod_resolver(const AgentOptions& options) {
  auto mount = k8s::find_cgroup2_mount(options.cgroup_root);
  if (!mount) {
    std::string what = "no cgroup2 mount at or below " + options.cgroup_root;
    if (options.cgroup_root_given)
      throw util::FatalError(what + " (--cgroup-root): pod labels need cgroup v2; point it at the cgroup2 mount",
                             util::kExitUsage);
    util::log_warn(what + ": pod labels are off");
    return nullptr;
  }
  k8s::PodResolverOptions pods;
  pods.cgroup2_dir = *mount;
  pods.pod_log_dir = options.pod_log_dir;
  pods.container_log_dir = options.container_log_dir;
  return std::make_unique<k8s::PodResolver>(pods);
}

// Every status interval: what the agent tracks, how fast events come, and what was lost.
class StatusLine {
 public:
  StatusLine(std::string prefix, uint64_t now) : prefix_(std::move(prefix)), last_(now) {}

  void log(const Pipeline& pipeline, uint64_t now) {
    uint64_t events = pipeline.reader().records();
    event::KernelCounters k = pipeline.probes().counters();
    char line[512];
    const aggregate::FlowTable& flows = pipeline.aggregator().flows();
    std::snprintf(line, sizeof(line),
                  "%sconnections=%zu flows=%zu flow_series=%zu/%zu events/s=%.0f lost=%llu stage=%d churn_breaker=%d",
                  prefix_.c_str(), pipeline.aggregator().connections().size(), flows.size(), flows.series(),
                  flows.flow_series_budget(), double(events - events_) * 1e9 / double(now - last_),
                  static_cast<unsigned long long>(k.total_lost()), static_cast<int>(flows.stage()),
                  flows.churn_breaker_tripped() ? 1 : 0);
    util::log_info(line);
    last_ = now;
    events_ = events;
  }
  uint64_t last() const { return last_; }

 private:
  std::string prefix_;
  uint64_t last_;
  uint64_t events_ = 0;
};

}  // namespace

int run_agent(const AgentOptions& options) {
  kernel::require_load_privileges();  // before anything is bound, mounted or logged
  if (sandbox::SeccompDenial denial = sandbox::seccomp_denial(); denial.bpf)
    throw util::FatalError(denial.message());
  else if (denial.any())
    util::log_warn(denial.message() + ": the tracepoint fallback and the perf buffer cannot work");
  kernel::require_btf();
  const char* node_env = std::getenv("NODE_NAME");
  PipelineOptions pipeline_options;
  pipeline_options.probes = options.probes;
  pipeline_options.reader = options.reader;
  pipeline_options.aggregation = options.aggregation;
  pipeline_options.checkpoint = true;
  pipeline_options.node = node_env ? node_env : "";
  serve::SnapshotStore store;
  serve::HttpSecurity security = http_security(options);
  serve::HttpServer http(store, options.listen, security,
                         options.http_limits);  // before the probes: a port in use leaves nothing attached
  install_stop_signals();
  std::unique_ptr<k8s::PodResolver> pods = make_pod_resolver(options);
  Pipeline pipeline(pipeline_options, std::move(pods));
  sandbox::drop_all_capabilities();  // everything from here on goes through descriptors already held
  if (std::string why = sandbox::forbid_filesystem_writes(); why.empty())
    util::log_info("no file can be written, created, removed or executed from here on (Landlock)");
  else
    util::log_warn(why + ": the agent's file writes are limited only by its mounts and uid");
  // Periodic snapshots list no connections; /api/v1/connections asks for them (SnapshotStore).
  store.publish(pipeline.snapshot(0));
  http.start();
  const std::string& host = options.listen.host;
  util::log_info(std::string(security.tls_cert_file.empty() ? "serving http://" : "serving https://") +
                 (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(http.port()) +
                 "/metrics and /api/v1/connections");

  uint64_t last_publish = util::monotonic_ns();
  StatusLine status(pipeline_options.node.empty() ? "" : "node=" + pipeline_options.node + " ", last_publish);
  while (!g_stop) {
    pipeline.poll();
    uint64_t now = util::monotonic_ns();
    if (now - last_publish >= options.publish_interval_ns) {
      pipeline.expire(now);
      store.publish(pipeline.snapshot(0));
      last_publish = now;
    }
    if (auto limit = store.connections_wanted()) store.answer_connections(pipeline.snapshot(*limit), *limit);
    if (options.status_interval_ns && now - status.last() >= options.status_interval_ns) status.log(pipeline, now);
  }
  store.close();  // a handler waiting for connections answers now instead of at its timeout
  http.stop();
  if (kernel::PinDir* pins = pipeline.probes().pins()) {
    pipeline.store_checkpoint();
    util::log_info("stopping: the probes stay attached in " + pins->path() +
                   " for the next agent (`netwatch cleanup` removes them)");
  } else {
    util::log_info("stopping: releasing probes");
  }
  return 0;
}

}  // namespace netwatch::daemon
