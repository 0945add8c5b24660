// Where the tp_btf probes keep a socket's state: in a hash (sock_table) from connect or accept,
// because an entry there is far cheaper to make and delete than sk_storage and most connections
// are short; in the socket's own sk_storage from its second RTT sample, because the ACK path finds
// that without a hash. The table is read through the pinned map; the state's content through
// the events that carry it.
#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <thread>

#include "util/log.h"
#include "tests/support/agent_process.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

// Entries in a pinned hash map keyed by u64.
size_t entries(int map_fd) {
  size_t n = 0;
  uint64_t key = 0, next = 0;
  for (uint64_t* prev = nullptr; bpf_map_get_next_key(map_fd, prev, &next) == 0; prev = &key) {
    key = next;
    ++n;
  }
  return n;
}

TEST(SocketState, a_connection_that_lives_on_moves_to_socket_storage_with_its_state_intact) {
  const uint16_t service = 63410;
  const int pairs = 16;
  const uint64_t interval = 100'000'000;
  PinDirForTest pins;
  netwatch::kernel::ProbeOptions options;
  options.rtt_interval_ns = interval;
  options.pin_dir = pins.path();
  std::unique_ptr<netwatch::kernel::ProbeSet> probes;
  ASSERT_NO_FATAL_FAILURE(start_probes(options, netwatch::kernel::AttachVariant::tp_btf, probes));
  EventCollector events(*probes, 20);
  Fd table(bpf_obj_get((pins.path() + "/maps/sock_table").c_str()));
  ASSERT_TRUE(table.valid()) << "no pinned sock_table: " << strerror(errno);
  const size_t base = entries(table.get());  // other sockets connected since the probes started

  Fd listener = listen_on(AF_INET, service);
  std::vector<Fd> clients, servers;
  std::vector<std::unique_ptr<SocketThread>> echoes;
  const uint64_t started = monotonic_ns();
  for (int i = 0; i < pairs; ++i) {
    clients.push_back(connect_to(AF_INET, service));
    servers.push_back(accept_one(listener.get()));
  }
  // Young: both ends of every connection are in the table (others' new sockets only add).
  EXPECT_GE(entries(table.get()), base + 2 * pairs);

  for (Fd& s : servers)
    echoes.push_back(std::make_unique<SocketThread>(s.get(), [](int fd) {
      char buf[64];
      for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) send_all(fd, buf, static_cast<size_t>(n));
    }));
  // Both ends receive a segment every ~20 ms for 5 intervals: each makes its second sample.
  char msg[16] = {};
  for (const uint64_t exchange = monotonic_ns(); monotonic_ns() - exchange < 5 * interval;) {
    for (Fd& c : clients) {
      send_all(c.get(), msg, sizeof(msg));
      recv_exact(c.get(), msg, sizeof(msg));
    }
    std::this_thread::sleep_for(20ms);  // pacing, not a wait for a result
  }
  // Promoted: our 32 entries have left the table (slack for others' sockets made meanwhile).
  EXPECT_LE(entries(table.get()), base + 4);

  std::vector<uint64_t> cookies;
  for (Fd& c : clients) cookies.push_back(socket_cookie(c.get()));
  const std::string comm = thread_comm();
  for (Fd& c : clients) shutdown(c.get(), SHUT_WR);  // the echo sees EOF and stops
  for (auto& e : echoes) e->join();
  clients.clear();
  echoes.clear();
  servers.clear();

  // Each client's close, found in its storage, still carries what connect() recorded.
  for (uint64_t cookie : cookies) {
    std::vector<Event> closes = events.wait_for(of_type_with_cookie(EventType::close, cookie), 1);
    ASSERT_EQ(closes.size(), 1u) << "no close for cookie " << cookie;
    EXPECT_EQ(closes[0].pid, static_cast<uint32_t>(getpid()));
    EXPECT_EQ(closes[0].comm_view(), comm);
    EXPECT_EQ(closes[0].direction, netwatch::event::Direction::outbound);
    EXPECT_GT(closes[0].duration_ns, 4 * interval);
    EXPECT_LE(closes[0].duration_ns, monotonic_ns() - started);
    EXPECT_GT(closes[0].stats.segs_out, 10u);
    EXPECT_GE(events.matching(of_type_with_cookie(EventType::rtt, cookie)).size(), 2u);
  }
  EXPECT_EQ(events.wait_for(of_type_on_port(EventType::close, service), 2 * pairs).size(), size_t(2 * pairs));
  EXPECT_LE(entries(table.get()), base + 4) << "closing left entries behind";
}

}  // namespace
}  // namespace nwtest
