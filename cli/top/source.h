// Where `netwatch top` gets its snapshots: a running agent's GET /api/v1/connections, or the
// probes loaded in this process (standalone). Both hand over the same JSON document, so the
// view has one parser and one model whatever the source.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "cli/probe_flags.h"

namespace netwatch::cli {

// The source could not deliver a snapshot this time (agent unreachable, HTTP error). The
// interactive view keeps the last data and retries; --once and --json exit 1 with what().
class SourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // "agent http://10.0.0.5:9464" or "standalone (tp_btf, ringbuf)", for the header line.
  virtual std::string describe() const = 0;
  // Reads what the kernel has sent since the last call, without waiting. A no-op for an agent.
  virtual void pump() {}
  // How often pump() must run to keep the event buffer from filling, in ms; 0: never.
  virtual int pump_interval_ms() const { return 0; }
  // One snapshot in the /api/v1/connections format. Throws SourceError.
  virtual nlohmann::json fetch() = 0;
};

struct AgentUrl {
  std::string scheme = "http";  // or https, for an agent behind a TLS proxy
  std::string host;             // without brackets
  int port = 0;
  std::string path;  // "/api/v1/connections" unless the URL names another
  std::string text;  // as the user wrote it, for messages
};

// "http://HOST:PORT", "http://[::1]:9464/", "HOST:PORT" (http), "https://...", or the full
// endpoint URL; nullopt (with why) when it is none of those.
std::optional<AgentUrl> parse_agent_url(const std::string& text, std::string* why);

std::unique_ptr<SnapshotSource> make_agent_source(const AgentUrl& url);
// Loads the probes (root or CAP_BPF+CAP_PERFMON; FatalError exit 2 otherwise).
std::unique_ptr<SnapshotSource> make_standalone_source(const ProbeFlags& flags);

}  // namespace netwatch::cli
