// The checkpoint a stopping agent leaves for the next one: everything it exports comes back.
#include "persist/checkpoint.h"

#include <gtest/gtest.h>

#include <map>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

#include "serve/metrics_render.h"
#include "serve/snapshot_json.h"
#include "tests/support/event_builder.h"

namespace netwatch::persist {
namespace {

using test::EventBuilder;

k8s::WorkloadLabels pods(uint64_t cgroup) {
  return cgroup == 42 ? k8s::WorkloadLabels{"shop", "cart-7f9", "app"} : k8s::WorkloadLabels{};
}

// Connections live and closed, a failed connect, a pod, an IPv6 peer, retransmits, RTTs.
void traffic(aggregate::Aggregator& agg) {
  agg.on_event(EventBuilder(event::EventType::connect, 1).cgroup(42).latency(3'000'000).at(10'000'000'000));
  agg.on_event(EventBuilder(event::EventType::rtt, 1).cgroup(42).stats(2, 40, 4000, 100, 250).at(11'000'000'000));
  agg.on_event(
      EventBuilder(event::EventType::accept, 2, event::Direction::inbound).peer("2001:db8::7").at(10'500'000'000));
  agg.on_event(
      EventBuilder(event::EventType::rtt, 2, event::Direction::inbound).peer("2001:db8::7").stats(0, 9, 900, 50, 80));
  agg.on_event(EventBuilder(event::EventType::connect_failed, 3).peer("10.9.9.9").error(ECONNREFUSED));
  agg.on_event(EventBuilder(event::EventType::connect, 4).latency(1'000'000).at(10'600'000'000));
  agg.on_event(EventBuilder(event::EventType::close, 4).stats(1, 12, 1200, 30).at(10'700'000'000));
}

// Flows come out in hash-table order: compare what is exported, not the order.
std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

nlohmann::json with_sorted_flows(nlohmann::json j) {
  std::sort(j["flows"].begin(), j["flows"].end(), [](const auto& a, const auto& b) { return a.dump() < b.dump(); });
  return j;
}

aggregate::AgentHealth health_with_counters() {
  aggregate::AgentHealth h;
  h.kernel.emitted = {0, 5, 4, 3, 2, 1, 9};
  h.kernel.lost = {0, 1, 0, 0, 0, 2, 0};
  h.kernel.state_full = 7;
  h.kernel.state_spilled = 4;
  h.drains = 1234;
  h.decode_errors = 3;
  h.programs = {{"btf_probe", 11, 5000, 50}};
  h.pods = k8s::PodResolverStats{};
  h.pods->cache_hits = 17;
  return h;
}

TEST(Checkpoint, a_restored_aggregator_exports_what_the_saved_one_did) {
  aggregate::Aggregator before(aggregate::AggregatorConfig{}, pods);
  traffic(before);
  std::vector<uint8_t> bytes = save_checkpoint(before, health_with_counters());

  aggregate::Aggregator after(aggregate::AggregatorConfig{}, pods);
  std::optional<Restored> r = restore_checkpoint(bytes, after);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->connections, 2u);  // 1 and 2 live; 4 closed
  EXPECT_EQ(r->flows, before.flows().size());

  auto a = before.snapshot(12'000'000'000, 1'700'000'000'000'000'000);
  auto b = after.snapshot(12'000'000'000, 1'700'000'000'000'000'000);
  EXPECT_TRUE(sorted_lines(serve::render_metrics_text(*b)) == sorted_lines(serve::render_metrics_text(*a)));
  EXPECT_EQ(with_sorted_flows(serve::snapshot_to_json(*b, 100)), with_sorted_flows(serve::snapshot_to_json(*a, 100)));

  // The restored connection goes on counting from the kernel's cumulative counters.
  after.on_event(EventBuilder(event::EventType::rtt, 1).cgroup(42).stats(5, 60, 6000, 100, 250).at(13'000'000'000));
  auto c = after.snapshot(13'000'000'000, 1'700'000'001'000'000'000);
  std::string text = serve::render_metrics_text(*c);
  EXPECT_NE(text.find("netwatch_tcp_retransmits_total{direction=\"outbound\",peer=\"10.0.0.2\",port=\"80\","
                      "namespace=\"shop\",pod=\"cart-7f9\",container=\"app\"} 5"),
            std::string::npos)
      << text;
}

TEST(Checkpoint, a_connection_first_seen_mid_life_keeps_counting_across_a_wrap_and_a_restart) {
  // Older than netwatch (first seen on an RTT sample), with 32-bit counters about to wrap.
  auto rtt = [](uint32_t segs) {
    return EventBuilder(event::EventType::rtt, 7, event::Direction::unknown).ports(45000, 443).stats(segs, segs);
  };
  aggregate::Aggregator before(aggregate::AggregatorConfig{});
  before.on_event(rtt(0xfffffff0u));  // the base: not counted
  before.on_event(rtt(0x10));         // 0x20 past the wrap
  aggregate::Aggregator after(aggregate::AggregatorConfig{});
  ASSERT_TRUE(restore_checkpoint(save_checkpoint(before, aggregate::AgentHealth{}), after));
  after.on_event(rtt(0x30));  // 0x20 more
  auto s = after.snapshot(1, 1);
  ASSERT_EQ(s->connections.size(), 1u);
  EXPECT_EQ(s->connections[0].connection.segs_out, 0x40u);
  EXPECT_EQ(s->connections[0].connection.retransmits, 0x40u);
  ASSERT_EQ(s->flows.size(), 1u);
  EXPECT_EQ(s->flows[0].stats.segments_sent, 0x40u);
}

TEST(Checkpoint, counters_of_the_restarted_parts_become_bases) {
  aggregate::Aggregator before(aggregate::AggregatorConfig{}, pods);
  std::vector<uint8_t> bytes = save_checkpoint(before, health_with_counters());
  aggregate::Aggregator after(aggregate::AggregatorConfig{}, pods);
  std::optional<Restored> r = restore_checkpoint(bytes, after);
  ASSERT_TRUE(r);

  aggregate::AgentHealth now;  // the new process: its own counters start from zero
  now.kernel.emitted[1] = 2;
  now.drains = 10;
  now.programs = {{"btf_probe", 99, 100, 1}, {"btf_set_state", 98, 7, 1}};
  now.pods = k8s::PodResolverStats{};
  r->base.add_to(now);
  EXPECT_EQ(now.kernel.emitted[1], 7u);
  EXPECT_EQ(now.kernel.lost[5], 2u);
  EXPECT_EQ(now.kernel.state_full, 7u);
  EXPECT_EQ(now.kernel.state_spilled, 4u);
  EXPECT_EQ(now.drains, 1244u);
  EXPECT_EQ(now.decode_errors, 3u);
  EXPECT_EQ(now.programs[0].run_time_ns, 5100u);
  EXPECT_EQ(now.programs[0].run_cnt, 51u);
  EXPECT_EQ(now.programs[1].run_cnt, 1u);  // a program the previous agent did not have
  EXPECT_EQ(now.pods->cache_hits, 17u);
}

TEST(Checkpoint, a_smaller_series_budget_folds_the_restored_flows) {
  aggregate::Aggregator before(aggregate::AggregatorConfig{}, pods);
  for (uint64_t i = 1; i <= 50; ++i)
    before.on_event(EventBuilder(event::EventType::connect, i).peer("10.1.0." + std::to_string(i)));
  aggregate::AggregatorConfig small;
  small.max_flows = 10;
  aggregate::Aggregator after(small, pods);
  ASSERT_TRUE(restore_checkpoint(save_checkpoint(before, aggregate::AgentHealth{}), after));
  EXPECT_LE(after.flows().size(), small.max_flows + 3);
  EXPECT_EQ(after.connections().size(), 50u);
  uint64_t connects = 0;
  after.flows().for_each([&](const aggregate::Flow& f) { connects += f.stats.connects[0]; });
  EXPECT_EQ(connects, 50u);  // folded, not dropped
}

TEST(Checkpoint, the_histograms_of_expired_flows_stay_in_their_service_across_a_restart) {
  aggregate::AggregatorConfig config;
  config.flow_idle_ns = 2000;
  aggregate::Aggregator before(config, pods);
  for (uint64_t i = 1; i <= 3; ++i) {
    before.on_event(EventBuilder(event::EventType::connect, i).peer("10.1.0." + std::to_string(i)).latency(i * 1000).at(i));
    before.on_event(EventBuilder(event::EventType::close, i).peer("10.1.0." + std::to_string(i)).at(i + 1));
  }
  before.on_event(EventBuilder(event::EventType::connect, 9).peer("10.1.0.9").latency(9000).at(5000));
  before.expire(6000);  // the three closed flows go; the fourth stays
  auto service_connects = [](const aggregate::Aggregator& a) {
    auto s = a.snapshot(1, 1);
    uint64_t n = 0;
    for (const aggregate::ServiceView& v : s->services) n += v.stats.connect_latency.count;
    return n;
  };
  ASSERT_EQ(before.flows().size(), 1u);
  ASSERT_EQ(service_connects(before), 4u);
  aggregate::Aggregator after(config, pods);
  ASSERT_TRUE(restore_checkpoint(save_checkpoint(before, aggregate::AgentHealth{}), after));
  EXPECT_EQ(service_connects(after), 4u);
}

TEST(Checkpoint, native_buckets_and_the_churn_breakers_counts_survive_a_restart) {
  aggregate::AggregatorConfig config;
  config.churn_new_flows_per_minute = 10;
  aggregate::Aggregator before(config, pods);
  before.on_event(EventBuilder(event::EventType::connect, 1).peer("10.1.0.1").latency(1000).at(1'000'000'000));
  for (uint64_t i = 2; i <= 30; ++i)  // a minute on: new peers count, and trip the breaker
    before.on_event(EventBuilder(event::EventType::connect, i)
                        .peer("10.1.0." + std::to_string(i))
                        .latency(i * 77'777)
                        .at(70'000'000'000));
  ASSERT_EQ(before.flows().churn_trips_total(), 1u);
  aggregate::Aggregator after(config, pods);
  ASSERT_TRUE(restore_checkpoint(save_checkpoint(before, aggregate::AgentHealth{}), after));
  EXPECT_EQ(after.flows().churn_trips_total(), 1u);
  EXPECT_EQ(after.flows().new_flow_keys_total(), before.flows().new_flow_keys_total());
  auto native = [](const aggregate::Aggregator& a) {  // the services' native buckets, by index
    std::map<int, uint64_t> counts;
    auto snapshot = a.snapshot(1, 1);  // held: a range-for over a temporary's member outlives it
    for (const aggregate::ServiceView& v : snapshot->services) {
      const aggregate::LatencyHistogram& h = v.stats.connect_latency;
      for (size_t k = 0; k < h.native_buckets.size(); ++k)
        if (h.native_buckets[k]) counts[h.native_first + int(k)] += h.native_buckets[k];
    }
    return counts;
  };
  EXPECT_FALSE(native(before).empty());
  EXPECT_EQ(native(after), native(before));
}

TEST(Checkpoint, bytes_that_are_not_a_checkpoint_restore_nothing) {
  aggregate::Aggregator before(aggregate::AggregatorConfig{}, pods);
  traffic(before);
  std::vector<uint8_t> bytes = save_checkpoint(before, aggregate::AgentHealth{});
  for (size_t cut : {size_t{0}, size_t{1}, bytes.size() / 2, bytes.size() - 1}) {
    aggregate::Aggregator after(aggregate::AggregatorConfig{}, pods);
    EXPECT_FALSE(restore_checkpoint(std::span(bytes.data(), cut), after)) << cut;
    EXPECT_EQ(after.connections().size(), 0u);
    EXPECT_EQ(after.flows().size(), 0u);
  }
}

// Found by fuzz_checkpoint: a checkpoint whose connection records have another layout threw out
// of restore_checkpoint() instead of being refused.
TEST(Checkpoint, connection_records_of_another_layout_restore_nothing) {
  aggregate::Aggregator before(aggregate::AggregatorConfig{}, pods);
  traffic(before);
  nlohmann::json j = nlohmann::json::from_cbor(save_checkpoint(before, aggregate::AgentHealth{}));
  nlohmann::json& layout = j["aggregator"]["connections"]["record"];
  layout[1] = layout[1].get<int>() + 8;
  std::vector<uint8_t> bytes = nlohmann::json::to_cbor(j);
  aggregate::Aggregator after(aggregate::AggregatorConfig{}, pods);
  EXPECT_FALSE(restore_checkpoint(bytes, after));
  EXPECT_EQ(after.connections().size(), 0u);
  EXPECT_EQ(after.flows().size(), 0u);
}

void expect_same_exports(const aggregate::Aggregator& a, const aggregate::Aggregator& b) {
  auto x = a.snapshot(12'000'000'000, 1'700'000'000'000'000'000);
  auto y = b.snapshot(12'000'000'000, 1'700'000'000'000'000'000);
  EXPECT_TRUE(sorted_lines(serve::render_metrics_text(*y)) == sorted_lines(serve::render_metrics_text(*x)));
  EXPECT_EQ(with_sorted_flows(serve::snapshot_to_json(*y, 100)), with_sorted_flows(serve::snapshot_to_json(*x, 100)));
}

// The upgrade path: tests/data/checkpoint/format1.cbor is what the agent before format 2 saved
// after traffic() with health_with_counters(). This agent restores it to what that one exported.
TEST(Checkpoint, a_format_1_checkpoint_of_the_previous_agent_restores) {
  std::ifstream in(NW_TEST_DATA_DIR "/checkpoint/format1.cbor", std::ios::binary);
  std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  ASSERT_FALSE(bytes.empty());
  ASSERT_EQ(nlohmann::json::from_cbor(bytes).at("format"), 1);
  aggregate::Aggregator before(aggregate::AggregatorConfig{}, pods);
  traffic(before);
  aggregate::Aggregator after(aggregate::AggregatorConfig{}, pods);
  std::optional<Restored> r = restore_checkpoint(bytes, after);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->connections, 2u);
  EXPECT_EQ(r->flows, before.flows().size());
  expect_same_exports(before, after);
  EXPECT_EQ(r->base.kernel.emitted[1], 5u);
  EXPECT_EQ(r->base.kernel.state_spilled, 4u);
  EXPECT_EQ(r->base.drains, 1234u);
  EXPECT_EQ(r->base.decode_errors, 3u);
  ASSERT_EQ(r->base.programs.size(), 1u);
  EXPECT_EQ(r->base.programs[0].run_cnt, 50u);
  EXPECT_EQ(r->base.programs[0].run_time_ns, 5000u);
  EXPECT_EQ(r->base.pods.cache_hits, 17u);
}

// A newer agent may add fields and sections: this one skips what it does not know.
TEST(Checkpoint, unknown_fields_and_sections_of_a_newer_agent_are_skipped) {
  aggregate::Aggregator before(aggregate::AggregatorConfig{}, pods);
  traffic(before);
  nlohmann::json j = nlohmann::json::from_cbor(save_checkpoint(before, health_with_counters()));
  j["tracing"] = {{"spans", {1, 2, 3}}};
  j["aggregator"]["sketches"] = {{"kind", "ddsketch"}};
  j["aggregator"]["flows"]["rows"][0]["jitter_us"] = 12;
  j["aggregator"]["events"]["syn_cookie"] = 99;
  j["kernel"]["map_pressure"] = 5;
  j["pods"]["cache_refreshes"] = 8;
  aggregate::Aggregator after(aggregate::AggregatorConfig{}, pods);
  std::optional<Restored> r = restore_checkpoint(nlohmann::json::to_cbor(j), after);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->connections, 2u);
  expect_same_exports(before, after);
  EXPECT_EQ(r->base.drains, 1234u);
  EXPECT_EQ(r->base.pods.cache_hits, 17u);
}

TEST(Checkpoint, a_format_newer_than_this_agent_reads_restores_nothing) {
  aggregate::Aggregator before(aggregate::AggregatorConfig{}, pods);
  traffic(before);
  nlohmann::json j = nlohmann::json::from_cbor(save_checkpoint(before, aggregate::AgentHealth{}));
  j["format"] = j["format"].get<int>() + 1;
  aggregate::Aggregator after(aggregate::AggregatorConfig{}, pods);
  EXPECT_FALSE(restore_checkpoint(nlohmann::json::to_cbor(j), after));
  EXPECT_EQ(after.connections().size(), 0u);
  EXPECT_EQ(after.flows().size(), 0u);
}

}  // namespace
}  // namespace netwatch::persist
