#include "cli/top/source.h"

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/top/model.h"
#include "daemon/pipeline.h"
#include "k8s/pod_resolver.h"
#include "serve/snapshot_json.h"
#include "util/clock.h"
#include "util/host_port.h"
#include "util/log.h"

namespace netwatch::cli {
namespace {

constexpr char kConnectionsPath[] = "/api/v1/connections";

// httplib connects without blocking and reports only "Connection"; one plain connect() with
// the same timeout tells refused from unreachable from silent, which is what the reader needs.
std::string connect_error(const std::string& host, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
  std::string why = "connection failed";
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd >= 0) {
    int err = ::connect(fd, res->ai_addr, res->ai_addrlen) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 2000) == 1) {
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = ETIMEDOUT;
      }
    }
    if (err) why = std::strerror(err);
    ::close(fd);
  }
  freeaddrinfo(res);
  return why;
}

std::string reason(httplib::Error error, const AgentUrl& url) {
  switch (error) {
    case httplib::Error::Connection:
      return connect_error(url.host, url.port);
    case httplib::Error::ConnectionTimeout:
      return "no answer to the connection attempt within 2s";
    case httplib::Error::Read:
      return "the connection failed while reading the answer (or it took over 5s)";
    case httplib::Error::Write:
      return "the connection failed while sending the request";
    default:
      return "HTTP client error: " + httplib::to_string(error);
  }
}

class AgentSource : public SnapshotSource {
 public:
  explicit AgentSource(const AgentUrl& url)
      : url_(url),
        client_(url.scheme + "://" + (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host) + ":" +
                std::to_string(url.port)) {
    client_.set_connection_timeout(2);
    client_.set_read_timeout(5);
    // One connection for the whole session: top's own polling stays one row in the agent's table.
    client_.set_keep_alive(true);
  }

  std::string describe() const override { return "agent " + url_.text; }

  nlohmann::json fetch() override {
    httplib::Result res = client_.Get(url_.path.c_str());
    if (!res) throw SourceError("cannot reach agent at " + url_.text + ": " + reason(res.error(), url_));
    if (res->status != 200)
      throw SourceError("agent at " + url_.text + " answered HTTP " + std::to_string(res->status) + " for " +
                        url_.path);
    try {
      return top::parse_document(res->body);
    } catch (const top::SnapshotError& e) {
      throw SourceError(std::string(e.what()) + " from " + url_.text);
    }
  }

 private:
  AgentUrl url_;
  httplib::Client client_;
};

// Pod labels as the agent finds them by default (/sys/fs/cgroup, /var/log/pods); quietly off on
// a host without cgroup v2: a view has no log to warn in.
std::unique_ptr<k8s::PodResolver> default_pod_resolver() {
  auto mount = k8s::find_cgroup2_mount("/sys/fs/cgroup");
  if (!mount) return nullptr;
  k8s::PodResolverOptions options;
  options.cgroup2_dir = *mount;
  return std::make_unique<k8s::PodResolver>(options);
}

std::unique_ptr<daemon::Pipeline> start_pipeline(const ProbeFlags& flags) {
  daemon::PipelineOptions options;
  options.probes = flags.probe_options();
  options.reader = flags.reader_options();
  try {
    return std::make_unique<daemon::Pipeline>(options, default_pod_resolver());
  } catch (const util::FatalError& e) {
    if (e.exit_code() == util::kExitUsage && std::strstr(e.what(), "CAP_BPF"))
      throw util::FatalError(std::string(e.what()) + "; or read a running agent: netwatch top --agent http://HOST:9464",
                             util::kExitUsage);
    throw;
  }
}

// The agent's pipeline in-process (daemon/pipeline.h), its snapshots as the agent's JSON.
class StandaloneSource : public SnapshotSource {
 public:
  explicit StandaloneSource(const ProbeFlags& flags) : pipeline_(start_pipeline(flags)) {}

  std::string describe() const override {
    return "standalone (" + std::string(kernel::variant_name(pipeline_->probes().variant())) + ", " +
           std::string(kernel::transport_name(pipeline_->probes().transport())) + ")";
  }
  void pump() override { pipeline_->drain(); }
  int pump_interval_ms() const override { return pipeline_->drain_interval_ms(); }

  nlohmann::json fetch() override {
    pipeline_->drain();
    pipeline_->expire(util::monotonic_ns());
    return serve::snapshot_to_json(*pipeline_->snapshot(SIZE_MAX), SIZE_MAX);
  }

 private:
  std::unique_ptr<daemon::Pipeline> pipeline_;
};

}  // namespace

std::optional<AgentUrl> parse_agent_url(const std::string& text, std::string* why) {
  auto bad = [&](const std::string& reason) -> std::optional<AgentUrl> {
    if (why) *why = reason;
    return std::nullopt;
  };
  AgentUrl url;
  url.text = text;
  std::string rest = text;
  if (size_t scheme = rest.find("://"); scheme != std::string::npos) {
    std::string name = rest.substr(0, scheme);
    if (name != "http" && name != "https") return bad("the scheme must be http or https");
    url.scheme = name;
    rest = rest.substr(scheme + 3);
  } else {
    url.text = "http://" + text;
  }
  size_t slash = rest.find('/');
  url.path = slash == std::string::npos ? "" : rest.substr(slash);
  rest = rest.substr(0, std::min(slash, rest.size()));
  if (url.path.empty() || url.path == "/") url.path = kConnectionsPath;
  util::HostPortError error;
  auto host_port = util::parse_host_port(rest, 1, &error);
  if (!host_port) {
    switch (error) {
      case util::HostPortError::unclosed_bracket:
        return bad("unclosed [ in the IPv6 address");
      case util::HostPortError::no_port:
        return bad(rest.starts_with('[') ? "it needs a port: http://[IPv6]:PORT" : "it needs a port: http://HOST:PORT");
      case util::HostPortError::unbracketed_ipv6:
        return bad("an IPv6 address goes in brackets: http://[::1]:9464");
      case util::HostPortError::no_host:
        return bad("the host is missing");
      case util::HostPortError::port_out_of_range:
        break;
    }
    return bad("the port must be a number between 1 and 65535");
  }
  url.host = host_port->host;
  url.port = host_port->port;
  return url;
}

std::unique_ptr<SnapshotSource> make_agent_source(const AgentUrl& url) {
  return std::make_unique<AgentSource>(url);
}

std::unique_ptr<SnapshotSource> make_standalone_source(const ProbeFlags& flags) {
  return std::make_unique<StandaloneSource>(flags);
}

}  // namespace netwatch::cli
