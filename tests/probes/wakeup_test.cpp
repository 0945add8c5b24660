// The ring buffer's forced wakeup: events go out without waking the reader, except the one that
// makes the backlog cross a quarter of the ring. A reader that would otherwise sleep for its whole
// drain interval must be woken by a burst that crosses the mark, in both attach variants.
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "transport/event_reader.h"
#include "kernel/probe_set.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

class CountingSink : public netwatch::event::EventSink {
 public:
  void on_event(const Event&) override { ++events; }
  uint64_t events = 0;
};

// port: above ip_local_port_range (32768-60999), so no ephemeral socket can hold it.
void burst_wakes_the_reader(netwatch::kernel::AttachVariant variant, uint16_t port) {
  netwatch::kernel::ProbeOptions options;
  options.variant = variant;
  options.transport = netwatch::kernel::Transport::ringbuf;
  options.ring_bytes = 256u << 10;  // the mark is 64 KiB: ~390 events
  auto probes = netwatch::kernel::ProbeSet::start(options);
  CountingSink sink;
  netwatch::transport::EventReader reader(*probes, sink, {.drain_interval_ms = 30'000});
  reader.drain();

  Fd listener = listen_on(AF_INET, port);
  auto t0 = std::chrono::steady_clock::now();
  auto polled = std::async(std::launch::async, [&] { return reader.poll(); });
  std::this_thread::sleep_for(200ms);  // the reader is asleep in epoll_wait
  // 250 connections: connect, accept and two closes each, ~170 KiB of events.
  for (int i = 0; i < 250; ++i) {
    Fd client = connect_to(AF_INET, port);
    Fd server(::accept(listener.get(), nullptr, nullptr));
    ASSERT_TRUE(server.valid());
  }
  ASSERT_EQ(polled.wait_for(10s), std::future_status::ready)
      << "the reader slept through a burst past the wakeup mark";
  EXPECT_GT(polled.get(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ(probes->counters().total_lost(), 0u);
}

TEST(RingWakeup, BurstPastTheMarkWakesTheReaderTpBtf) {
  burst_wakes_the_reader(netwatch::kernel::AttachVariant::tp_btf, 64100);
}

TEST(RingWakeup, BurstPastTheMarkWakesTheReaderTracepoint) {
  burst_wakes_the_reader(netwatch::kernel::AttachVariant::tracepoint, 64110);
}

}  // namespace
}  // namespace nwtest
