// The reader hands decoded records to its sink in batches, in order; flush() hands the rest.
#include "transport/event_reader.h"

#include <gtest/gtest.h>

#include <cstring>

#include "transport/memory_ring.h"
#include "tests/support/event_builder.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

namespace netwatch::transport {
namespace {

struct BatchRecorder : event::EventSink {
  std::vector<size_t> batches;
  std::vector<uint64_t> cookies;
  void on_event(const event::Event& e) override { cookies.push_back(e.cookie); }
  void on_records(std::span<const event::EventRecord> records) override {
    batches.push_back(records.size());
    event::EventSink::on_records(records);
  }
};

using test::raw_rtt;

TEST(EventReader, hands_records_over_in_order_a_batch_at_a_time) {
  BatchRecorder sink;
  EventReader reader(sink);
  size_t n = EventReader::kBatch * 2 + 5;
  for (uint64_t cookie = 1; cookie <= n; ++cookie) {
    nw_event raw = raw_rtt(cookie);
    reader.deliver(&raw, sizeof(raw));
  }
  reader.deliver("short", 5);  // a decode error: counted, never handed over
  EXPECT_EQ(sink.batches, (std::vector<size_t>{EventReader::kBatch, EventReader::kBatch}));
  reader.flush();
  EXPECT_EQ(sink.batches.back(), 5u);
  ASSERT_EQ(sink.cookies.size(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(sink.cookies[i], i + 1);
  EXPECT_EQ(reader.records(), n + 1);
  EXPECT_EQ(reader.decode_errors(), 1u);
  reader.flush();  // nothing waiting: no empty batch
  EXPECT_EQ(sink.batches.size(), 3u);
}

TEST(EventReader, drain_ends_with_a_flush) {
  BatchRecorder sink;
  EventReader reader(sink);
  nw_event raw = raw_rtt(7);
  reader.deliver(&raw, sizeof(raw));
  EXPECT_TRUE(sink.cookies.empty());
  reader.drain();
  EXPECT_EQ(sink.cookies, std::vector<uint64_t>{7});
}

// The kernel goes on writing while the reader drains. A drain reads what the ring held when it
// began, so that a producer as fast as the reader cannot keep the agent's reader thread in one
// drain forever (it publishes and answers listings between drains).
TEST(EventReader, a_drain_ends_at_what_the_ring_held_when_it_began) {
  MemoryRing ring(1 << 16);
  struct Producer : BatchRecorder {
    MemoryRing* ring = nullptr;
    uint64_t next = 0;
    void on_records(std::span<const event::EventRecord> records) override {
      BatchRecorder::on_records(records);
      for (size_t i = 0; i < records.size() && next < 10'000; ++i) {  // one new record per record read
        nw_event raw = raw_rtt(++next);
        ring->write(&raw, sizeof(raw));
      }
    }
  } sink;
  sink.ring = &ring;
  EventReader reader(ring.layout(), sink);
  for (; sink.next < 100;) {
    nw_event raw = raw_rtt(++sink.next);
    ASSERT_TRUE(ring.write(&raw, sizeof(raw)));
  }
  EXPECT_EQ(reader.drain(), 100);  // not the 10,000 written while it ran
  EXPECT_EQ(sink.cookies.size(), 100u);
  EXPECT_EQ(reader.drain(), 100);  // what the first drain's batches made the producer write
  EXPECT_EQ(sink.cookies.back(), 200u);
}

}  // namespace
}  // namespace netwatch::transport
