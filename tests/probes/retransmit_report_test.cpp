// Retransmit reports aggregated in the kernel (on_retransmit() in bpf/netwatch.bpf.c says when
// they go out), with every retransmitted segment still counted: the agent's per-flow count (the
// real EventRules fed the socket's events) must equal the kernel's own tcpi_total_retrans. A
// black-holed connection, which receives nothing and so never yields an RTT sample, must be
// reported while it is stuck.
#include <algorithm>
#include <cstring>
#include <thread>

#include "aggregate/connection_table.h"
#include "aggregate/event_rules.h"
#include "aggregate/flow_table.h"
#include "tests/support/harness.h"
#include "tests/support/kernel_tcp_info.h"

namespace nwtest {
namespace {

class RetransmitReportTest : public KernelTest {};

std::function<bool(const Event&)> with_cookie(uint64_t cookie) {
  return [=](const Event& e) { return e.cookie == cookie; };
}

// One loopback connection with a sink on the server end, as the retransmit tests need it.
struct Connection {
  Fd listener, client, server;
  uint64_t cookie = 0;
  uint16_t client_port = 0;
  std::atomic<uint64_t> received{0};
  std::unique_ptr<SocketThread> sink;

  explicit Connection(uint16_t server_port) {
    listener = listen_on(AF_INET, server_port);
    client = tcp_socket(AF_INET);
    cookie = socket_cookie(client.get());  // before connect(): the classic variant finds it too
    if (int err = connect_loopback(client.get(), AF_INET, server_port))
      throw std::runtime_error("connect: " + std::string(std::strerror(err)));
    client_port = local_port(client.get());
    server = accept_one(listener.get());
    sink = std::make_unique<SocketThread>(server.get(), [this](int fd) {
      char buf[65536];
      for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) received += static_cast<uint64_t>(n);
    });
  }

  // Sends for 3 s with 1 in 10 of the client's data segments dropped: many retransmissions per
  // interval, while ACKs keep coming. Returns the bytes sent.
  uint64_t send_under_loss(uint16_t server_port) {
    NftTable nft;
    nft.add_rule("tcp dport " + std::to_string(server_port) + " numgen random mod 10 == 0 counter drop");
    std::string chunk(64 * 1024, 'x');
    uint64_t sent = 0;
    for (auto end = std::chrono::steady_clock::now() + 3s; std::chrono::steady_clock::now() < end;) {
      send_all(client.get(), chunk.data(), chunk.size());
      sent += chunk.size();
    }
    return sent;
  }

  bool all_acked(uint64_t sent) const { return read_kernel_tcp_info(client.get()).unacked == 0 && received == sent; }

  // Closes both ends so the client's sock reaches TCP_CLOSE; returns TCP_INFO just before.
  KernelTcpInfo close() {
    const KernelTcpInfo last = read_kernel_tcp_info(client.get());
    client.reset();
    sink->join();  // the client's FIN ends the sink
    server.reset();
    return last;
  }
};

TEST_P(RetransmitReportTest, one_report_per_interval_and_every_segment_counted) {
  constexpr auto kInterval = 500ms;
  constexpr uint64_t kIntervalNs = std::chrono::nanoseconds(kInterval).count();
  ASSERT_NO_FATAL_FAILURE(start_tracing(1'000'000'000, kIntervalNs));
  const uint16_t server_port = port(63100);
  Connection conn(server_port);

  const uint64_t loss_started = monotonic_ns();
  const uint64_t sent = conn.send_under_loss(server_port);
  ASSERT_TRUE(wait_until([&] { return conn.all_acked(sent); }, 10s)) << "the data was never all acknowledged";
  const uint64_t loss_ended = monotonic_ns();
  const KernelTcpInfo after_loss = read_kernel_tcp_info(conn.client.get());
  RecordProperty("total_retrans", std::to_string(after_loss.total_retrans));
  ASSERT_GE(after_loss.total_retrans, 20u) << "too few retransmissions to show any aggregation";

  events_->settle();
  std::vector<Event> reports = by_time(events_->matching(of_type_with_cookie(EventType::retransmit, conn.cookie)));
  ASSERT_FALSE(reports.empty()) << "no retransmit report at all";
  RecordProperty("reports", std::to_string(reports.size()));
  // At most one report per interval. The decision runs on the socket's tcp_mstamp, the event
  // stamps on bpf_ktime_get_ns(): allow the stamp a little staleness.
  for (size_t i = 1; i < reports.size(); ++i)
    EXPECT_GE(reports[i].ts_ns - reports[i - 1].ts_ns, kIntervalNs - 20'000'000) << "reports " << i - 1 << ", " << i;
  const uint64_t window = loss_ended - loss_started;
  EXPECT_LE(reports.size(), window / kIntervalNs + 1) << "over " << window / 1'000'000 << " ms";
  EXPECT_LT(reports.size() * 4, after_loss.total_retrans) << "reports were not aggregated";
  // segs is the growth since the socket's previous report; the socket started at 0.
  uint32_t previous = 0;
  for (const Event& e : reports) {
    EXPECT_EQ(e.segs, e.stats.total_retrans - previous);
    previous = e.stats.total_retrans;
  }
  EXPECT_LE(previous, after_loss.total_retrans);

  const KernelTcpInfo before_close = conn.close();
  auto is_close = of_type_with_cookie(EventType::close, conn.cookie);
  ASSERT_EQ(events_->wait_for(is_close, 1).size(), 1u) << "no close event";
  events_->settle();
  // No loss after the rule went away: nothing more was retransmitted.
  EXPECT_EQ(before_close.total_retrans, after_loss.total_retrans);
  EXPECT_EQ(events_->matching(is_close)[0].stats.total_retrans, before_close.total_retrans);
  // The agent's count, from the reports, RTT samples and close together, is the kernel's.
  EXPECT_EQ(agent_retransmits(events_->matching(with_cookie(conn.cookie))), before_close.total_retrans);
}

TEST_P(RetransmitReportTest, retransmissions_ride_on_rtt_samples_while_acks_flow) {
  // RTT samples every 200 ms carry total_retrans; a report would only repeat it. Sustained loss
  // for 3 s then makes one report (the first retransmission, at once), not one per interval.
  constexpr uint64_t kIntervalNs = 1'000'000'000;
  ASSERT_NO_FATAL_FAILURE(start_tracing(200'000'000, kIntervalNs));
  const uint16_t server_port = port(63300);
  Connection conn(server_port);

  const uint64_t sent = conn.send_under_loss(server_port);
  ASSERT_TRUE(wait_until([&] { return conn.all_acked(sent); }, 10s)) << "the data was never all acknowledged";
  const uint32_t total_retrans = read_kernel_tcp_info(conn.client.get()).total_retrans;
  ASSERT_GE(total_retrans, 20u) << "too few retransmissions to show anything";
  events_->settle();

  std::vector<Event> reports = by_time(events_->matching(of_type_with_cookie(EventType::retransmit, conn.cookie)));
  ASSERT_FALSE(reports.empty()) << "the first retransmission was not reported";
  RecordProperty("reports", std::to_string(reports.size()));
  std::vector<Event> samples = events_->matching(of_type_with_cookie(EventType::rtt, conn.cookie));
  if (rtt_samples_expected()) {
    // Without the rule, a report per interval: 3 or more over the 3 s of loss. An RTO stall of
    // over a second (no ACK, so no sample) may legitimately add one.
    EXPECT_LE(reports.size(), 2u) << "reports repeated what the RTT samples carried";
    uint32_t sampled = 0;
    for (const Event& e : samples) sampled = std::max(sampled, e.stats.total_retrans);
    EXPECT_GT(sampled, reports.front().stats.total_retrans) << "the RTT samples did not carry the count on";
  } else {
    EXPECT_TRUE(samples.empty());  // nothing to ride on: the reports alone carry the count (below)
  }

  const KernelTcpInfo before_close = conn.close();
  ASSERT_EQ(events_->wait_for(of_type_with_cookie(EventType::close, conn.cookie), 1).size(), 1u) << "no close event";
  events_->settle();
  EXPECT_EQ(agent_retransmits(events_->matching(with_cookie(conn.cookie))), before_close.total_retrans);
}

TEST_P(RetransmitReportTest, black_holed_connection_is_reported_while_stuck) {
  constexpr uint64_t kIntervalNs = 1'000'000'000;  // the agent's default
  ASSERT_NO_FATAL_FAILURE(start_tracing(1'000'000'000, kIntervalNs));
  const uint16_t server_port = port(63200);
  Connection conn(server_port);
  std::string data(1000, 'x');
  send_all(conn.client.get(), data.data(), data.size());
  uint64_t sent = data.size();
  ASSERT_TRUE(wait_until([&] { return conn.all_acked(sent); }, 5s));
  auto is_report = of_type_with_cookie(EventType::retransmit, conn.cookie);
  auto reported_total = [&] {
    uint32_t max = 0;
    for (const Event& e : events_->matching(is_report)) max = std::max(max, e.stats.total_retrans);
    return max;
  };

  {
    // Everything towards the server is dropped: no ACK comes back, so no RTT sample either;
    // only the retransmissions themselves (RTO backoff from 200 ms) can report.
    NftTable nft;
    uint64_t rule = nft.add_rule("tcp dport " + std::to_string(server_port) + " counter drop");
    send_all(conn.client.get(), data.data(), data.size());
    sent += data.size();
    uint64_t first_retransmit_seen = 0;
    ASSERT_TRUE(wait_until(
        [&] {
          uint32_t total = read_kernel_tcp_info(conn.client.get()).total_retrans;
          if (total >= 1 && !first_retransmit_seen) first_retransmit_seen = monotonic_ns();
          return total >= 4;
        },
        15s))
        << "the kernel did not retransmit 4 times";

    // The first retransmission after a quiet period is reported at once.
    std::vector<Event> reports = by_time(events_->wait_for(is_report, 1));
    ASSERT_FALSE(reports.empty()) << "no retransmit report while the connection is stuck";
    EXPECT_LE(reports[0].ts_ns, first_retransmit_seen + 50'000'000) << "the first report was late";
    // Within an interval of the backoff's retransmissions, the reports catch up with the
    // kernel's count, while the connection is still stuck.
    EXPECT_TRUE(
        wait_until([&] { return reported_total() == read_kernel_tcp_info(conn.client.get()).total_retrans; }, 3s))
        << "reported " << reported_total() << ", kernel " << read_kernel_tcp_info(conn.client.get()).total_retrans;
    const KernelTcpInfo stuck = read_kernel_tcp_info(conn.client.get());
    EXPECT_EQ(stuck.state, 1u) << "still ESTABLISHED";
    EXPECT_GT(stuck.unacked, 0u) << "still stuck";
    EXPECT_GE(events_->matching(is_report).size(), 2u);
    EXPECT_GE(nft.packets(rule), stuck.total_retrans);
    RecordProperty("retransmits_while_stuck", std::to_string(stuck.total_retrans));
    RecordProperty("reports_while_stuck", std::to_string(events_->matching(is_report).size()));
  }

  // The next backoff retransmission gets through.
  ASSERT_TRUE(wait_until([&] { return conn.all_acked(sent); }, 15s)) << "the connection never recovered";
  const KernelTcpInfo before_close = conn.close();
  auto is_close = of_type_with_cookie(EventType::close, conn.cookie);
  std::vector<Event> closes = events_->wait_for(is_close, 1);
  ASSERT_EQ(closes.size(), 1u) << "no close event";
  events_->settle();
  EXPECT_EQ(closes[0].stats.total_retrans, before_close.total_retrans);
  EXPECT_EQ(agent_retransmits(events_->matching(with_cookie(conn.cookie))), before_close.total_retrans);
}

NW_ALL_COMBOS(RetransmitReportTest);

}  // namespace
}  // namespace nwtest
