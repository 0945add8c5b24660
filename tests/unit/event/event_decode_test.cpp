// Decoding raw ring-buffer records: what the kernel side writes, byte for byte.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>

#include "event/event.h"

extern "C" {
#include <linux/types.h>
#include "netwatch.h"
}

namespace netwatch::event {
namespace {

nw_event raw_event(uint8_t type, uint16_t family) {
  nw_event raw{};
  raw.type = type;
  raw.family = family;
  raw.sport = 40000;
  raw.dport = 443;
  return raw;
}

TEST(EventDecode, rejects_wrong_size) {
  nw_event raw = raw_event(NW_EV_CONNECT, AF_INET);
  EXPECT_FALSE(decode_event(&raw, sizeof(raw) - 1));
  EXPECT_FALSE(decode_event(&raw, 0));
  EXPECT_TRUE(decode_event(&raw, sizeof(raw)));
}

TEST(EventDecode, rejects_unknown_type_and_family) {
  nw_event raw = raw_event(0, AF_INET);
  EXPECT_FALSE(decode_event(&raw, sizeof(raw)));
  raw = raw_event(NW_EV_TYPE_COUNT, AF_INET);
  EXPECT_FALSE(decode_event(&raw, sizeof(raw)));
  raw = raw_event(NW_EV_RTT, AF_UNIX);
  EXPECT_FALSE(decode_event(&raw, sizeof(raw)));
}

TEST(EventDecode, ipv4_mapped_ipv6_is_reported_as_ipv4) {
  nw_event raw = raw_event(NW_EV_ACCEPT, AF_INET6);
  inet_pton(AF_INET6, "::ffff:10.1.2.3", raw.saddr);
  inet_pton(AF_INET6, "2001:db8::7", raw.daddr);
  auto ev = decode_event(&raw, sizeof(raw));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->saddr.family, 4);
  EXPECT_EQ(ev->saddr.to_string(), "10.1.2.3");
  EXPECT_EQ(ev->daddr.family, 6);
  EXPECT_EQ(ev->daddr.to_string(), "2001:db8::7");
}

TEST(EventDecode, copies_every_field) {
  nw_event raw = raw_event(NW_EV_CLOSE, AF_INET);
  inet_pton(AF_INET, "192.0.2.1", raw.saddr);
  raw.cookie = 77;
  raw.pid = 1234;
  std::memcpy(raw.comm, "curl", 5);
  raw.direction = NW_DIR_OUTBOUND;
  raw.duration_ns = 5'000'000;
  raw.stats.srtt_us = 120;
  raw.stats.total_retrans = 3;
  raw.stats.segs_out = 90;
  raw.stats.bytes_received = 1ULL << 40;
  auto ev = decode_event(&raw, sizeof(raw));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, EventType::close);
  EXPECT_EQ(ev->direction, Direction::outbound);
  EXPECT_EQ(ev->saddr.to_string(), "192.0.2.1");
  EXPECT_EQ(ev->sport, 40000);
  EXPECT_EQ(ev->dport, 443);
  EXPECT_EQ(ev->cookie, 77u);
  EXPECT_EQ(ev->pid, 1234u);
  EXPECT_EQ(ev->comm_view(), "curl");
  EXPECT_EQ(ev->duration_ns, 5'000'000u);
  EXPECT_EQ(ev->stats.srtt_us, 120u);
  EXPECT_EQ(ev->stats.total_retrans, 3u);
  EXPECT_EQ(ev->stats.segs_out, 90u);
  EXPECT_EQ(ev->stats.bytes_received, 1ULL << 40);
}

TEST(EventDecode, unterminated_comm_is_cut_at_sixteen) {
  nw_event raw = raw_event(NW_EV_CONNECT, AF_INET);
  std::memset(raw.comm, 'a', sizeof(raw.comm));
  auto ev = decode_event(&raw, sizeof(raw));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->comm_view().size(), 15u);
}

TEST(EventDecode, comm_keeps_printable_ascii_only) {
  nw_event raw = raw_event(NW_EV_CONNECT, AF_INET);
  std::memcpy(raw.comm, "a\x1b[2J\x07\xff\xc3\xa9z", 10);
  auto ev = decode_event(&raw, sizeof(raw));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->comm_view(), "a?[2J????z");
}

TEST(ErrnoName, names_the_connect_failures) {
  EXPECT_EQ(errno_name(ECONNREFUSED), "ECONNREFUSED");
  EXPECT_EQ(errno_name(ETIMEDOUT), "ETIMEDOUT");
  EXPECT_EQ(errno_name(ECONNRESET), "ECONNRESET");
  EXPECT_EQ(errno_name(ECONNABORTED), "ECONNABORTED");
  EXPECT_EQ(connect_failure_name(0), "closed_before_established");
  EXPECT_EQ(connect_failure_name(ECONNABORTED), "ECONNABORTED");
  EXPECT_EQ(connect_failure_name(ECONNREFUSED), "ECONNREFUSED");
  EXPECT_EQ(errno_name(9999), "E9999");
}

}  // namespace
}  // namespace netwatch::event
