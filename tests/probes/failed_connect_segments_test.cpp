// The segments a failed connect sent: netwatch_tcp_segments_sent_total must count the SYNs of
// connects that never established, or the retransmit ratio of a refused or black-holed peer has
// its retransmits above the line and no segments below it. Ground truth is the kernel's count of
// the segments that reached the closed port (an nftables counter on the input hook, which every
// loopback segment passes once). TCP_INFO cannot say: a failed connect() runs tcp_disconnect()
// (__inet_stream_connect()'s sock_error path), which zeroes tcpi_segs_out.
#include <string>

#include "tests/support/harness.h"

namespace nwtest {
namespace {

class FailedConnectSegmentsTest : public KernelTest {};

TEST_P(FailedConnectSegmentsTest, refused_connects_count_their_syns_as_sent) {
  ASSERT_NO_FATAL_FAILURE(start_tracing());
  constexpr int kAttempts = 5;
  for (const Family& fam : kFamilies) {
    SCOPED_TRACE(fam.af == AF_INET ? "IPv4" : "IPv6");
    const uint16_t closed_port = port(64500, fam.event_family);
    Fd holder = bind_only(fam.af, closed_port);  // bound, never listening: the kernel answers RST
    NftTable nft;
    const uint64_t rule = nft.add_rule("tcp dport " + std::to_string(closed_port) + " counter");  // counts, drops nothing
    for (int i = 0; i < kAttempts; ++i) {
      Fd fd = tcp_socket(fam.af);
      ASSERT_EQ(connect_loopback(fd.get(), fam.af, closed_port), ECONNREFUSED);
    }
    const uint64_t kernel_segs_out = nft.packets(rule);
    ASSERT_GE(kernel_segs_out, uint64_t(kAttempts)) << "one SYN per connect at least";

    auto ours = [&](const Event& e) { return e.dport == closed_port || e.sport == closed_port; };
    events_->wait_for(of_type_on_port(EventType::connect_failed, closed_port), kAttempts);
    events_->settle();
    std::vector<Event> failed = events_->matching(of_type_on_port(EventType::connect_failed, closed_port));
    ASSERT_EQ(failed.size(), size_t(kAttempts));
    uint64_t event_segs_out = 0;
    for (const Event& e : failed) event_segs_out += e.stats.segs_out;
    EXPECT_EQ(event_segs_out, kernel_segs_out) << "the events' final counters vs the segments that arrived";
    // What the agent exports for the flow, through the real connection table.
    AgentTotals agent = agent_totals(events_->matching(ours));
    EXPECT_EQ(agent.segments_sent, kernel_segs_out)
        << "netwatch_tcp_segments_sent_total vs the sum of tcpi_segs_out of the refused sockets";
    EXPECT_EQ(agent.connects[int(netwatch::aggregate::ConnectResult::refused)], uint64_t(kAttempts));
  }
}

NW_ALL_COMBOS(FailedConnectSegmentsTest);

}  // namespace
}  // namespace nwtest
