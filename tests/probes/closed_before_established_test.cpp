// A connect the application gave up on: close() while the SYN is unanswered. The kernel closes
// the socket from SYN_SENT with sk_err 0 (tcp_close() -> tcp_set_state(TCP_CLOSE), no error
// set), which is not ECONNABORTED (a real errno with another meaning): trace, the API and the
// metrics' result label must name it closed_before_established. Ground truth: this test closed
// the socket itself, before any answer could come (its SYNs are dropped on input).
#include <fcntl.h>

#include <string>

#include "cli/event_format.h"
#include "tests/support/harness.h"

namespace nwtest {
namespace {

class ClosedBeforeEstablishedTest : public KernelTest {};

// The agent's count of `result` by its label value, as /metrics and the API name it.
uint64_t connects_labelled(const AgentTotals& totals, const std::string& result) {
  uint64_t n = 0;
  for (int r = 0; r < netwatch::aggregate::kConnectResultCount; ++r)
    if (netwatch::aggregate::connect_result_name(static_cast<netwatch::aggregate::ConnectResult>(r)) == result)
      n += totals.connects[r];
  return n;
}

TEST_P(ClosedBeforeEstablishedTest, close_during_the_handshake_has_its_own_name) {
  ASSERT_NO_FATAL_FAILURE(start_tracing());
  const uint16_t silent_port = port(64600);
  Fd holder = bind_only(AF_INET, silent_port);  // nothing else may use the port meanwhile
  NftTable nft;
  const uint64_t rule = nft.add_rule("tcp dport " + std::to_string(silent_port) + " counter drop");

  Fd fd = tcp_socket(AF_INET);
  ASSERT_EQ(fcntl(fd.get(), F_SETFL, O_NONBLOCK), 0);
  ASSERT_EQ(connect_loopback(fd.get(), AF_INET, silent_port), EINPROGRESS);
  const uint16_t sport = local_port(fd.get());
  ASSERT_TRUE(wait_until([&] { return nft.packets(rule) >= 1; }, 2s)) << "the SYN never left";
  int err = -1;
  socklen_t len = sizeof(err);
  ASSERT_EQ(getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len), 0);
  ASSERT_EQ(err, 0) << "the kernel had an error for it: the test would prove nothing";
  fd.reset();  // the application gives up: SYN_SENT -> CLOSE

  auto is_failed = of_type_on_port(EventType::connect_failed, silent_port);
  events_->wait_for(is_failed, 1);
  events_->settle();
  std::vector<Event> failed = events_->matching(is_failed);
  ASSERT_EQ(failed.size(), 1u);
  const Event& e = failed[0];
  EXPECT_EQ(e.sport, sport);
  EXPECT_EQ(e.error, 0) << "sk_err at the close";
  EXPECT_EQ(e.pid, static_cast<uint32_t>(getpid()));

  // trace --json
  nlohmann::json j = netwatch::cli::event_to_json(e, netwatch::util::WallClock());
  EXPECT_EQ(j["error"], "closed_before_established") << j.dump();
  // The metrics' result label and the API's connects key (both connect_result_name()).
  AgentTotals agent = agent_totals(events_->matching(of_type_on_port(EventType::connect_failed, silent_port)));
  EXPECT_EQ(connects_labelled(agent, "closed_before_established"), 1u);
  EXPECT_EQ(connects_labelled(agent, "error"), 0u);
}

NW_ALL_COMBOS(ClosedBeforeEstablishedTest);

}  // namespace
}  // namespace nwtest
