#include "tests/support/harness.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>
#include <stdexcept>

#include "aggregate/connection_table.h"
#include "aggregate/event_rules.h"
#include "aggregate/flow_table.h"
#include "kernel/kernel_features.h"
#include "util/log.h"

namespace nwtest {
namespace {

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

void set_int_option(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) throw sys_error("setsockopt");
}

Fd bound_socket(int family, uint16_t port) {
  Fd fd = tcp_socket(family);
  set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1);
  // Its own port on ::1 only, so the IPv4 socket of the same test can share the number.
  if (family == AF_INET6) set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1);
  socklen_t len;
  sockaddr_storage addr = loopback_address(family, port, &len);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
    throw sys_error("bind to port " + std::to_string(port));
  return fd;
}

}  // namespace

// ---- sockets ----

sockaddr_storage loopback_address(int family, uint16_t port, socklen_t* len) {
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    *len = sizeof(*a);
  }
  return ss;
}

std::string loopback_text(int family) {
  return family == AF_INET ? "127.0.0.1" : "::1";
}

Fd tcp_socket(int family) {
  Fd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd.valid()) throw sys_error("socket");
  return fd;
}

Fd listen_on(int family, uint16_t port) {
  Fd fd = bound_socket(family, port);
  if (listen(fd.get(), 128) != 0) throw sys_error("listen");
  return fd;
}

Fd bind_only(int family, uint16_t port) {
  return bound_socket(family, port);
}

int connect_loopback(int fd, int family, uint16_t port) {
  socklen_t len;
  sockaddr_storage addr = loopback_address(family, port, &len);
  return connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 ? 0 : errno;
}

Fd connect_to(int family, uint16_t port) {
  Fd fd = tcp_socket(family);
  if (int err = connect_loopback(fd.get(), family, port))
    throw std::runtime_error("connect to port " + std::to_string(port) + ": " + std::strerror(err));
  return fd;
}

Fd accept_one(int listen_fd, std::chrono::milliseconds timeout) {
  pollfd p{listen_fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) throw std::runtime_error("accept: nothing arrived");
  Fd fd(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) throw sys_error("accept");
  return fd;
}

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw sys_error("getsockname");
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

tcp_info read_tcp_info(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) throw sys_error("TCP_INFO");
  return info;
}

uint64_t socket_cookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) throw sys_error("SO_COOKIE");
  return cookie;
}

void send_all(int fd, const void* data, size_t size) {
  auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw sys_error("send");
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void recv_exact(int fd, void* data, size_t size) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw n == 0 ? std::runtime_error("recv: peer closed") : sys_error("recv");
    p += n;
    size -= static_cast<size_t>(n);
  }
}

SocketThread::SocketThread(int fd, std::function<void(int fd)> body)
    : fd_(fd), thread_([fd, body = std::move(body)] {
        try {
          body(fd);
        } catch (const std::exception&) {
        }
      }) {}

SocketThread::~SocketThread() {
  if (!thread_.joinable()) return;
  shutdown(fd_, SHUT_RDWR);
  thread_.join();
}

void SocketThread::join() {
  if (thread_.joinable()) thread_.join();
}

static uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ULL + uint64_t(ts.tv_nsec);
}

uint64_t unix_ns() {
  return clock_ns(CLOCK_REALTIME);
}

std::string thread_comm() {
  char name[17] = {};
  prctl(PR_GET_NAME, name);
  return name;
}

// ---- nftables ----

int run_nft(const std::string& args, const std::string& script, std::string* out) {
  std::string cmd = "nft " + args + (script.empty() ? "" : " -f -") + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), script.empty() ? "r" : "w");
  if (!pipe) return -1;
  if (script.empty()) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0)
      if (out) out->append(buf, n);
  } else {
    fputs(script.c_str(), pipe);
  }
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

NftTable::NftTable() {
  static std::atomic<int> serial{0};
  name_ = "nwtest_" + std::to_string(getpid()) + "_" + std::to_string(serial++);
  std::string script = "add table inet " + name_ + "\n" + "add chain inet " + name_ +
                       " inp { type filter hook input priority 0; policy accept; }\n";
  if (run_nft("", script) != 0) throw std::runtime_error("nft: creating table " + name_ + " failed");
}

NftTable::~NftTable() {
  if (run_nft("", "delete table inet " + name_ + "\n") != 0)
    ADD_FAILURE() << "nft: deleting table inet " << name_ << " failed; remove it by hand";
}

uint64_t NftTable::add_rule(const std::string& rule) {
  std::string out;
  // --echo --handle prints the rule back with "# handle N".
  if (run_nft("--echo --handle add rule inet " + name_ + " inp " + rule, "", &out) != 0)
    throw std::runtime_error("nft: adding rule '" + rule + "' failed: " + out);
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(# handle (\d+))")))
    throw std::runtime_error("nft: no handle in: " + out);
  return std::stoull(m[1]);
}

void NftTable::delete_rule(uint64_t handle) {
  if (run_nft("delete rule inet " + name_ + " inp handle " + std::to_string(handle), "") != 0)
    throw std::runtime_error("nft: deleting rule " + std::to_string(handle) + " failed");
}

uint64_t NftTable::packets(uint64_t handle) const {
  std::string out;
  if (run_nft("--handle list chain inet " + name_ + " inp", "", &out) != 0)
    throw std::runtime_error("nft: listing " + name_ + " failed");
  std::smatch m;
  std::regex re("counter packets (\\d+) bytes \\d+.*# handle " + std::to_string(handle) + "\\b");
  if (!std::regex_search(out, m, re)) throw std::runtime_error("nft: no counter for handle in: " + out);
  return std::stoull(m[1]);
}

// ---- events ----

EventCollector::EventCollector(const netwatch::kernel::ProbeSet& probes, int drain_interval_ms) {
  netwatch::transport::ReaderOptions options;
  options.drain_interval_ms = drain_interval_ms;
  reader_ = std::make_unique<netwatch::transport::EventReader>(probes, *this, options);
  thread_ = std::thread([this] { run(); });
}

EventCollector::~EventCollector() {
  stop_ = true;
  thread_.join();
  if (!error_.empty()) ADD_FAILURE() << "event reader: " << error_;
}

void EventCollector::run() {
  try {
    while (!stop_) {
      reader_->poll();
      decode_errors_ = reader_->decode_errors();
      std::lock_guard lock(mu_);
      ++drains_;
      cv_.notify_all();
    }
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    error_ = e.what();
    drains_ = UINT64_MAX / 2;  // releases anyone in settle(); the destructor reports the error
    cv_.notify_all();
  }
}

void EventCollector::on_event(const Event& event) {
  std::lock_guard lock(mu_);
  events_.push_back(event);
  cv_.notify_all();
}

std::vector<Event> EventCollector::matching(const std::function<bool(const Event&)>& pred) const {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  for (const Event& e : events_)
    if (pred(e)) out.push_back(e);
  return out;
}

std::vector<Event> EventCollector::wait_for(const std::function<bool(const Event&)>& pred, size_t n,
                                            std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  std::vector<Event> out;
  for (;;) {
    out.clear();
    for (const Event& e : events_)
      if (pred(e)) out.push_back(e);
    if (out.size() >= n || cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  return out;
}

void EventCollector::settle() {
  // A drain that starts after this call reads everything submitted before it; the second one
  // covers a poll that was already past its consume when we arrived.
  std::unique_lock lock(mu_);
  uint64_t target = drains_ + 2;
  cv_.wait_for(lock, 5s, [&] { return drains_ >= target; });
}

std::vector<Event> by_time(std::vector<Event> events) {
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.ts_ns < b.ts_ns; });
  return events;
}

AgentTotals agent_totals(const std::vector<Event>& events) {
  netwatch::aggregate::FlowTable flows(netwatch::aggregate::FlowTableLimits{.max_series = 1000000, .max_flows = 1000});
  netwatch::aggregate::ConnectionTable table;
  netwatch::aggregate::EventRules rules(flows, table, nullptr);
  nw_event raw;
  for (const Event& e : by_time(events)) rules.apply(netwatch::event::EventRecord::encode(e, raw));
  AgentTotals t;
  flows.for_each([&](const netwatch::aggregate::Flow& f) {
    t.segments_sent += f.stats.segments_sent;
    t.retransmits += f.stats.retransmits;
    t.rtt_count += f.stats.rtt.count;
    t.rtt_sum_ns += f.stats.rtt.sum_ns;
    for (size_t r = 0; r < t.connects.size(); ++r) t.connects[r] += f.stats.connects[r];
  });
  return t;
}

uint64_t agent_retransmits(const std::vector<Event>& events) {
  return agent_totals(events).retransmits;
}

std::function<bool(const Event&)> of_type_on_port(EventType type, uint16_t port) {
  return [=](const Event& e) { return e.type == type && (e.sport == port || e.dport == port); };
}

std::function<bool(const Event&)> of_type_with_cookie(EventType type, uint64_t cookie) {
  return [=](const Event& e) { return e.type == type && e.cookie == cookie; };
}

// ---- the fixture ----

std::vector<Combo> all_combos() {
  using netwatch::kernel::AttachVariant;
  using netwatch::kernel::Transport;
  return {{AttachVariant::tp_btf, Transport::ringbuf, 0},
          {AttachVariant::tp_btf, Transport::perfbuf, 1},
          {AttachVariant::tracepoint, Transport::ringbuf, 2},
          {AttachVariant::tracepoint, Transport::perfbuf, 3}};
}

std::string combo_name(const ::testing::TestParamInfo<Combo>& info) {
  return std::string(netwatch::kernel::variant_name(info.param.variant)) + "_" +
         std::string(netwatch::kernel::transport_name(info.param.transport));
}

void PrintTo(const Combo& combo, std::ostream* os) {
  *os << netwatch::kernel::variant_name(combo.variant) << "/" << netwatch::kernel::transport_name(combo.transport);
}

bool KernelTest::rtt_samples_expected() const {
  return GetParam().variant == netwatch::kernel::AttachVariant::tp_btf || netwatch::kernel::tcp_probe_has_skaddr();
}

void KernelTest::SetUp() {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
}

void start_probes(const netwatch::kernel::ProbeOptions& options, netwatch::kernel::AttachVariant variant,
                  std::unique_ptr<netwatch::kernel::ProbeSet>& probes) {
  try {
    probes = netwatch::kernel::ProbeSet::start(options);
  } catch (const netwatch::util::FatalError& e) {
    FAIL() << "loading the probes failed: " << e.what();
  }
  ASSERT_EQ(probes->variant(), variant);
}

void KernelTest::start_tracing(uint64_t rtt_interval_ns, uint64_t retrans_interval_ns) {
  netwatch::kernel::ProbeOptions options;
  options.variant = GetParam().variant;
  options.transport = GetParam().transport;
  options.rtt_interval_ns = rtt_interval_ns;
  options.retrans_interval_ns = retrans_interval_ns;
  ASSERT_NO_FATAL_FAILURE(start_probes(options, GetParam().variant, probes_));
  ASSERT_EQ(probes_->transport(), GetParam().transport);
  events_ = std::make_unique<EventCollector>(*probes_, kDrainMs);
}

std::vector<std::string> KernelTest::probe_args() const {
  return {"--attach",         std::string(netwatch::kernel::variant_name(GetParam().variant)),
          "--transport",      std::string(netwatch::kernel::transport_name(GetParam().transport)),
          "--drain-interval", "20ms"};
}

}  // namespace nwtest
