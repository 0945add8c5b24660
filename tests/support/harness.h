// What the kernel tests share: loopback sockets, TCP_INFO, an nftables table that cleans up
// after itself, an event collector that drains the real probes on a thread, and the fixture
// that runs every test once per attach variant x transport.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aggregate/flow_table.h"
#include "event/event.h"
#include "kernel/probe_set.h"
#include "transport/event_reader.h"
#include "util/fd.h"

namespace nwtest {

using namespace std::chrono_literals;
using netwatch::event::Event;
using netwatch::event::EventType;

// ---- sockets ----

using netwatch::util::Fd;  // util/fd.h

// The two address families a test runs over, and what IpAddress::family says for each.
struct Family {
  int af;
  uint8_t event_family;  // 4 or 6
};
inline constexpr Family kFamilies[] = {{AF_INET, 4}, {AF_INET6, 6}};

// 127.0.0.1 or ::1 with the given port.
sockaddr_storage loopback_address(int family, uint16_t port, socklen_t* len);
// "127.0.0.1" or "::1", as netwatch prints them.
std::string loopback_text(int family);

// A listening socket on the loopback address; throws on failure.
Fd listen_on(int family, uint16_t port);
// A bound socket that does not listen: connects to its port are refused, and nothing else can
// take the port while it lives.
Fd bind_only(int family, uint16_t port);
// A TCP socket, not yet connected, for tests that set options (TCP_SYNCNT, SO_COOKIE) first.
Fd tcp_socket(int family);
// Blocking connect to the loopback address; returns 0 or the errno.
int connect_loopback(int fd, int family, uint16_t port);
// Connects and returns the socket; throws on failure.
Fd connect_to(int family, uint16_t port);
// Waits for one connection on a listener; throws after the timeout.
Fd accept_one(int listen_fd, std::chrono::milliseconds timeout = 5s);

uint16_t local_port(int fd);
// glibc's struct tcp_info: it ends before tcpi_segs_out and the byte counters; for those
// see kernel_tcp_info.h.
tcp_info read_tcp_info(int fd);
uint64_t socket_cookie(int fd);  // SO_COOKIE: generates the cookie if the socket has none
void send_all(int fd, const void* data, size_t size);
void recv_exact(int fd, void* data, size_t size);

// A thread that serves one socket (a sink, an echo). On destruction it shuts the socket down,
// so a blocked recv() returns, and joins: a failed assertion never leaves it running. Errors
// inside it end the thread quietly; the test's own assertions notice the missing bytes.
class SocketThread {
 public:
  SocketThread(int fd, std::function<void(int fd)> body);
  ~SocketThread();
  void join();  // waits for the body to end by itself (the peer closed)

 private:
  int fd_;
  std::thread thread_;
};

// CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() stamps events with.
using netwatch::util::monotonic_ns;
// CLOCK_REALTIME in ns.
uint64_t unix_ns();
// The calling thread's comm: what bpf_get_current_comm() sees for a connect() made here.
std::string thread_comm();

// Polls pred every 5 ms until it holds (true) or the timeout passes (false).
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// ---- nftables ----

// A table of the test's own (inet nwtest_<pid>_<n>) with one input-hook chain. The table is
// deleted on destruction, so a failed assertion never leaves a drop rule behind. Loss goes on
// the input hook: a locally generated segment dropped on output is requeued at once and never
// counts as a retransmission.
class NftTable {
 public:
  NftTable();  // throws when nft fails
  ~NftTable();
  NftTable(const NftTable&) = delete;
  NftTable& operator=(const NftTable&) = delete;

  // Adds `rule` (e.g. "tcp dport 61000 drop") to the input chain; returns its handle.
  uint64_t add_rule(const std::string& rule);
  void delete_rule(uint64_t handle);
  // Packets the counter of rule `handle` has matched (needs "counter" in the rule).
  uint64_t packets(uint64_t handle) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// Runs nft with `script` on stdin; returns nft's exit status and stdout.
int run_nft(const std::string& args, const std::string& script, std::string* out = nullptr);

// ---- events ----

// Drains the probes on a thread of its own and keeps every event. Tests wait on predicates
// with deadlines; settle() proves the reader has caught up with the kernel.
class EventCollector : public netwatch::event::EventSink {
 public:
  EventCollector(const netwatch::kernel::ProbeSet& probes, int drain_interval_ms);
  ~EventCollector() override;

  void on_event(const Event& event) override;  // the reader thread

  std::vector<Event> matching(const std::function<bool(const Event&)>& pred) const;
  // Waits until at least `n` events match; returns them (fewer after the timeout).
  std::vector<Event> wait_for(const std::function<bool(const Event&)>& pred, size_t n,
                              std::chrono::milliseconds timeout = 5s);
  // Returns once two full drains have started after this call, so everything the kernel
  // emitted before it has been read: used before asserting "exactly N".
  void settle();
  uint64_t decode_errors() const { return decode_errors_; }

 private:
  void run();

  std::unique_ptr<netwatch::transport::EventReader> reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  uint64_t drains_ = 0;
  std::atomic<uint64_t> decode_errors_{0};
  std::atomic<bool> stop_{false};
  std::string error_;
  std::thread thread_;
};

// Events in kernel time order.
std::vector<Event> by_time(std::vector<Event> events);
// What the agent counts as retransmitted segments for these events (one socket's, usually): fed
// in order through the real connection table, reports and cumulative counters together.
uint64_t agent_retransmits(const std::vector<Event>& events);
// The same events through the real connection table, every flow's counters summed: what the
// agent's metrics would say for this traffic (the histograms' count and sum are summed too).
struct AgentTotals {
  uint64_t segments_sent = 0, retransmits = 0;
  uint64_t rtt_count = 0, rtt_sum_ns = 0;
  std::array<uint64_t, netwatch::aggregate::kConnectResultCount> connects{};
};
AgentTotals agent_totals(const std::vector<Event>& events);

// Predicates on the events of one test's traffic.
std::function<bool(const Event&)> of_type_on_port(EventType type, uint16_t port);
std::function<bool(const Event&)> of_type_with_cookie(EventType type, uint64_t cookie);

// Loads and attaches the probes and checks that they got the variant a test needs: a fatal
// failure otherwise (call it through ASSERT_NO_FATAL_FAILURE).
void start_probes(const netwatch::kernel::ProbeOptions& options, netwatch::kernel::AttachVariant variant,
                  std::unique_ptr<netwatch::kernel::ProbeSet>& probes);

// ---- the fixture ----

struct Combo {
  netwatch::kernel::AttachVariant variant;
  netwatch::kernel::Transport transport;
  int index;  // 0..3: spreads each combination's ports apart
};

std::string combo_name(const ::testing::TestParamInfo<Combo>& info);
void PrintTo(const Combo& combo, std::ostream* os);  // gtest prints "tp_btf/ringbuf", not bytes
std::vector<Combo> all_combos();

// Every kernel test. Ports are above ip_local_port_range (32768-60999 here), so no ephemeral
// socket on the machine ever holds them, and each combination gets its own (base + 10*index)
// so a connection still closing from the previous combination never lands in the next one.
class KernelTest : public ::testing::TestWithParam<Combo> {
 protected:
  static constexpr int kDrainMs = 20;

  void SetUp() override;
  // Loads and attaches the probes of this combination and starts collecting. Retransmits are
  // reported one by one unless retrans_interval_ns says otherwise (as netwatch trace does).
  void start_tracing(uint64_t rtt_interval_ns = 1'000'000'000, uint64_t retrans_interval_ns = 0);
  uint16_t port(uint16_t base, int n = 0) const { return static_cast<uint16_t>(base + 10 * GetParam().index + n); }
  // False for the tracepoint variant where tcp_probe's record has no skaddr (absent in 6.1,
  // present in 6.12): it cannot find the socket, so it sends no RTT sample (README, Kernels).
  bool rtt_samples_expected() const;
  // `--attach V --transport T --drain-interval 20ms` for the real binary.
  std::vector<std::string> probe_args() const;

  std::unique_ptr<netwatch::kernel::ProbeSet> probes_;
  std::unique_ptr<EventCollector> events_;
};

#define NW_ALL_COMBOS(suite) \
  INSTANTIATE_TEST_SUITE_P(, suite, ::testing::ValuesIn(nwtest::all_combos()), nwtest::combo_name)

}  // namespace nwtest
