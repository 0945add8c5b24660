// netwatch trace's output: the documented JSON fields per event type, and endpoints.
#include "cli/event_format.h"

#include <gtest/gtest.h>

#include "tests/support/event_builder.h"

namespace netwatch {
namespace {

using test::EventBuilder;

TEST(EventJson, common_fields_and_local_remote_ends) {
  util::WallClock clock;
  event::Event e = EventBuilder(event::EventType::connect, 42).latency(1500);
  e.pid = 7;
  auto j = cli::event_to_json(e, clock);
  for (const char* field : {"type", "ts_ns", "family", "saddr", "sport", "daddr", "dport", "direction", "pid", "comm",
                            "cookie", "cgroup_id", "netns", "latency_ns"})
    EXPECT_TRUE(j.contains(field)) << field;
  EXPECT_EQ(j["type"], "connect");
  EXPECT_EQ(j["saddr"], "10.0.0.1");
  EXPECT_EQ(j["sport"], 40000);
  EXPECT_EQ(j["daddr"], "10.0.0.2");
  EXPECT_EQ(j["dport"], 80);
  EXPECT_EQ(j["ts_ns"], clock.to_unix_ns(e.ts_ns));
}

TEST(EventJson, each_type_carries_its_own_fields) {
  util::WallClock clock;
  auto failed =
      cli::event_to_json(EventBuilder(event::EventType::connect_failed, 1).error(ETIMEDOUT).stats(2, 3), clock);
  EXPECT_EQ(failed["error"], "ETIMEDOUT");
  EXPECT_EQ(failed["total_retrans"], 2);
  EXPECT_EQ(failed["segs_out"], 3);
  auto retrans = cli::event_to_json(EventBuilder(event::EventType::retransmit, 1).segs(3).stats(9, 100), clock);
  EXPECT_EQ(retrans["segs"], 3);
  EXPECT_EQ(retrans["total_retrans"], 9);
  auto rtt = cli::event_to_json(EventBuilder(event::EventType::rtt, 1).stats(1, 50, 700, 800, 250), clock);
  EXPECT_EQ(rtt["srtt_us"], 250);
  EXPECT_EQ(rtt["bytes_sent"], 700);
  EXPECT_TRUE(rtt.contains("snd_cwnd"));
  EXPECT_FALSE(rtt.contains("duration_ns"));
  event::Event close = EventBuilder(event::EventType::close, 1).stats(2, 60, 900, 1000, 300);
  close.duration_ns = 5'000;
  auto c = cli::event_to_json(close, clock);
  EXPECT_EQ(c["duration_ns"], 5000);
  EXPECT_EQ(c["segs_out"], 60);
  EXPECT_EQ(c["bytes_received"], 1000);
  EXPECT_TRUE(c.contains("segs_in"));
  EXPECT_FALSE(c.contains("snd_cwnd"));
}

TEST(Endpoint, brackets_ipv6) {
  EXPECT_EQ(cli::endpoint(test::ip("192.0.2.1"), 80), "192.0.2.1:80");
  EXPECT_EQ(cli::endpoint(test::ip("2001:db8::1"), 443), "[2001:db8::1]:443");
  EXPECT_EQ(cli::human_duration(950'000), "950us");
  EXPECT_EQ(cli::human_duration(12'300'000), "12.3ms");
  EXPECT_EQ(cli::human_duration(1'200'000'000), "1.20s");
}

}  // namespace
}  // namespace netwatch
