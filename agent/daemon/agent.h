// `netwatch agent`, the daemon: the pipeline (daemon/pipeline.h) published every interval to
// the HTTP server, in a sandbox, until SIGINT or SIGTERM; then the checkpoint for the next agent.
#pragma once

#include <cstdint>
#include <string>

#include "aggregate/aggregator.h"
#include "kernel/probe_set.h"
#include "serve/http_server.h"
#include "transport/event_reader.h"

namespace netwatch::daemon {

// What the daemon runs with, already checked (cli/agent_command.cpp turns flags into it).
struct AgentOptions {
  util::ListenAddress listen;
  // HTTPS and basic auth, checked (and the password read) when the agent starts, after the
  // privilege checks.
  std::string tls_cert, tls_key;
  std::string basic_auth_user, basic_auth_password_file;
  serve::HttpLimits http_limits;  // connection caps, deadlines and size limits (serve/http_limits.h), checked
  kernel::ProbeOptions probes;    // with the pin directory, where the checkpoint goes too
  transport::ReaderOptions reader;
  aggregate::AggregatorConfig aggregation;
  uint64_t publish_interval_ns = 1'000'000'000;
  uint64_t status_interval_ns = 10'000'000'000;  // 0: no status line
  // Pod labels need the cgroup2 mount at or below cgroup_root: off, with a warning, when there is
  // none; an error instead when the user named the root (cgroup_root_given).
  std::string cgroup_root = "/sys/fs/cgroup";
  bool cgroup_root_given = false;
  std::string pod_log_dir = "/var/log/pods";
  std::string container_log_dir;  // empty: "containers" beside pod_log_dir
};

// Runs until a stop signal; returns the exit code. Throws FatalError with what to do.
int run_agent(const AgentOptions& options);

}  // namespace netwatch::daemon
