// Overload: a ring buffer far too small for an event storm. The agent must stay up and
// responsive, and account for every event: produced = received + lost, exactly.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/support/agent_process.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

TEST(Overload, tiny_ring_loses_events_but_counts_every_one) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: run sudo make test";
  const uint16_t service = 62801;
  // 4 KiB holds ~24 events; draining once a second, a connection storm overflows it.
  AgentProcess agent(62890, {"--ring-size", "4", "--drain-interval", "1s", "--publish-interval", "200ms",
                             "--rtt-interval", "1ms"});
  Fd listener = listen_on(AF_INET, service);
  fcntl(listener.get(), F_SETFL, O_NONBLOCK);  // the acceptor must notice stop
  std::atomic<bool> stop{false};
  std::thread acceptor([&] {
    while (!stop) {
      int fd = accept(listener.get(), nullptr, nullptr);
      if (fd >= 0) close(fd);
      else std::this_thread::sleep_for(1ms);
    }
  });
  int healthy = 0, probes = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 300; ++i) {
      Fd c = connect_to(AF_INET, service);
    }
    ++probes;
    healthy += http_get("127.0.0.1", agent.port(), "/healthz", nullptr) == 200;  // answers during the storm
  }
  stop = true;
  acceptor.join();
  EXPECT_EQ(healthy, probes);

  // After the storm, once the buffer is drained: every produced event is received or lost.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  double lost_total = 0;
  bool balanced = false;
  std::string text;
  while (!balanced && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1500ms);  // at least one drain and one publish
    text = agent.metrics_text();
    auto samples = parse_exposition(text);
    balanced = true;
    lost_total = 0;
    for (const char* type : {"connect", "accept", "connect_failed", "retransmit", "rtt", "close"}) {
      double produced = find_sample(samples, "netwatch_kernel_events_total", {{"type", type}}).value_or(-1);
      double received = find_sample(samples, "netwatch_events_total", {{"type", type}}).value_or(-1);
      double lost = find_sample(samples, "netwatch_events_lost_total", {{"type", type}}).value_or(-1);
      balanced &= produced == received + lost;
      lost_total += lost;
    }
  }
  EXPECT_TRUE(balanced) << text;
  EXPECT_GT(lost_total, 0) << "the storm never overflowed the ring: the test proves nothing";
  EXPECT_EQ(find_sample(parse_exposition(text), "netwatch_decode_errors_total", {}), 0.0);
}

}  // namespace
}  // namespace nwtest
