// The ring buffer read in place (RingConsumer through EventReader), over a MemoryRing laid out
// as the kernel lays one out: records in order across the end of the data, busy records wait,
// discarded ones are skipped, and consumer_pos moves only once the sink is done with a batch.
#include "transport/ring_consumer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "transport/event_reader.h"
#include "transport/memory_ring.h"
#include "tests/support/event_builder.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

namespace netwatch::transport {
namespace {

using test::raw_rtt;

// Writes RTT records with cookies from..to; the ring must have room for them.
void write_rtts(MemoryRing& ring, uint64_t from, uint64_t to) {
  for (uint64_t c = from; c <= to; ++c) {
    nw_event e = raw_rtt(c);
    ASSERT_TRUE(ring.write(&e, sizeof(e))) << "record " << c;
  }
}

// Records what it is handed, and where the ring's consumer_pos stood while it held them.
struct Recorder : event::EventSink {
  explicit Recorder(const MemoryRing* ring = nullptr) : ring(ring) {}
  const MemoryRing* ring;
  std::vector<uint64_t> cookies;
  std::vector<size_t> batches;
  std::vector<unsigned long> consumer_pos_during;
  void on_event(const event::Event& e) override {
    cookies.push_back(e.cookie);
    EXPECT_EQ(e.stats.srtt_us, e.cookie * 3);
  }
  void on_records(std::span<const event::EventRecord> records) override {
    batches.push_back(records.size());
    if (ring) consumer_pos_during.push_back(ring->consumer_pos());
    event::EventSink::on_records(records);
  }
};

std::vector<uint64_t> iota(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t c = from; c <= to; ++c) v.push_back(c);
  return v;
}

TEST(RingConsumer, reads_records_in_order_across_the_end_of_the_data) {
  MemoryRing ring(4096);  // 24 records of 168 bytes: the positions wrap every 24
  Recorder sink;
  EventReader reader(ring.layout(), sink);
  uint64_t cookie = 0;
  for (int round = 0; round < 10; ++round) {
    ASSERT_NO_FATAL_FAILURE(write_rtts(ring, cookie + 1, cookie + 17));
    cookie += 17;
    EXPECT_EQ(reader.drain(), 17);
    EXPECT_EQ(ring.consumer_pos(), ring.producer_pos());
  }
  EXPECT_EQ(sink.cookies, iota(1, cookie));
  EXPECT_EQ(reader.records(), cookie);
  EXPECT_EQ(reader.decode_errors(), 0u);
}

TEST(RingConsumer, a_full_ring_is_read_a_batch_at_a_time_and_freed_only_after_each) {
  MemoryRing ring(8192);  // 48 records
  Recorder sink(&ring);
  EventReader reader(ring.layout(), sink);
  uint64_t cookie = 0;
  for (nw_event e = raw_rtt(++cookie); ring.write(&e, sizeof(e)); e = raw_rtt(++cookie)) {
  }
  --cookie;  // the one that did not fit
  ASSERT_EQ(cookie, 48u);
  EXPECT_EQ(reader.drain(), 48);
  EXPECT_EQ(sink.batches, (std::vector<size_t>{EventReader::kBatch, 48 - EventReader::kBatch}));
  // While the sink held a batch, its space was still the reader's.
  const unsigned long record = ring_record_bytes(NW_EVENT_SIZE);
  EXPECT_EQ(sink.consumer_pos_during, (std::vector<unsigned long>{0, EventReader::kBatch * record}));
  EXPECT_EQ(ring.consumer_pos(), 48 * record);
  EXPECT_EQ(sink.cookies, iota(1, 48));
}

TEST(RingConsumer, a_busy_record_holds_back_the_records_after_it) {
  MemoryRing ring(4096);
  Recorder sink;
  EventReader reader(ring.layout(), sink);
  nw_event one = raw_rtt(1), two = raw_rtt(2), three = raw_rtt(3);
  ASSERT_TRUE(ring.write(&one, sizeof(one)));
  void* busy = ring.reserve(sizeof(nw_event));
  ASSERT_NE(busy, nullptr);
  ASSERT_TRUE(ring.write(&three, sizeof(three)));  // committed, but after the busy one
  EXPECT_EQ(reader.drain(), 1);
  EXPECT_EQ(sink.cookies, std::vector<uint64_t>{1});
  EXPECT_LT(ring.consumer_pos(), ring.producer_pos());
  std::memcpy(busy, &two, sizeof(two));
  ring.commit(busy);
  EXPECT_EQ(reader.drain(), 2);
  EXPECT_EQ(sink.cookies, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(ring.consumer_pos(), ring.producer_pos());
}

TEST(RingConsumer, discarded_records_are_passed_over_and_bad_ones_counted) {
  MemoryRing ring(4096);
  Recorder sink;
  EventReader reader(ring.layout(), sink);
  nw_event one = raw_rtt(1), two = raw_rtt(2), bad = raw_rtt(3);
  bad.family = 99;
  ASSERT_TRUE(ring.write(&one, sizeof(one)));
  void* dropped = ring.reserve(sizeof(nw_event));
  ring.commit(dropped, true);
  ASSERT_TRUE(ring.write("short", 5));
  ASSERT_TRUE(ring.write(&bad, sizeof(bad)));
  ASSERT_TRUE(ring.write(&two, sizeof(two)));
  EXPECT_EQ(reader.drain(), 4);  // the discarded record is not one
  EXPECT_EQ(sink.cookies, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(reader.decode_errors(), 2u);
  EXPECT_EQ(ring.consumer_pos(), ring.producer_pos());
}

// A pinned ring adopted by a restarted agent: the new reader starts at the consumer_pos the old
// one left, neither reading a record twice nor skipping one.
TEST(RingConsumer, a_new_reader_starts_where_the_previous_one_stopped) {
  MemoryRing ring(4096);
  ASSERT_NO_FATAL_FAILURE(write_rtts(ring, 1, 10));
  {
    Recorder first;
    EventReader reader(ring.layout(), first);
    EXPECT_EQ(reader.drain(), 10);
  }
  ASSERT_NO_FATAL_FAILURE(write_rtts(ring, 11, 30));
  Recorder second;
  EventReader reader(ring.layout(), second);
  EXPECT_EQ(reader.drain(), 20);
  EXPECT_EQ(second.cookies, iota(11, 30));
}

}  // namespace
}  // namespace netwatch::transport
