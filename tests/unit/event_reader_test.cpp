// The reader hands decoded records to its sink in batches, in order; flush() hands the rest.
#include "agent/event_reader.h"

#include <gtest/gtest.h>

#include <cstring>

#include "event_builder.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

namespace netwatch {
namespace {

struct BatchRecorder : EventSink {
  std::vector<size_t> batches;
  std::vector<uint64_t> cookies;
  void on_event(const Event& e) override { cookies.push_back(e.cookie); }
  void on_records(std::span<const EventRecord> records) override {
    batches.push_back(records.size());
    EventSink::on_records(records);
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

}  // namespace
}  // namespace netwatch
