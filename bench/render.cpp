// netwatch_render: the scrape's own work (issue 6, target 6: <= 200 ns per series):
// render_metrics_text on a snapshot of 1150 flows with synthetic traffic through the real
// aggregator (the budget raised so each keeps its detail), the protobuf exposition of the same
// snapshot (its bytes against the text's), and, for context, building that snapshot.
//
// "per_series" is seconds of CPU per series (Google Benchmark prints 150n for 150 ns).
#include <benchmark/benchmark.h>

#include "aggregate/aggregator.h"
#include "serve/metrics_protobuf.h"
#include "serve/metrics_render.h"
#include "bench/synthetic_traffic.h"
#include "tests/support/event_builder.h"

namespace netwatch::bench {
namespace {

// The flow count the render was measured at before the series budget (then ~49k series; the
// histograms are per service now, so the same flows are fewer series).
constexpr size_t kFlows = 1150;

// An aggregator after traffic over kFlows flows from `live` connections.
std::unique_ptr<aggregate::Aggregator> aggregate(size_t live) {
  return aggregate_synthetic(live, kFlows, 10 * live);
}

void BM_RenderMetricsText(benchmark::State& state) {
  auto aggregator = aggregate(20000);
  std::shared_ptr<const aggregate::Snapshot> snapshot = aggregator->snapshot(1, 1);
  size_t series = 0, bytes = 0;
  for (auto _ : state) {
    std::string text = serve::render_metrics_text(*snapshot);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
    state.PauseTiming();
    series = 0;
    for (size_t pos = 0; pos < text.size(); pos = text.find('\n', pos) + 1)
      if (text[pos] != '#') ++series;
    state.ResumeTiming();
  }
  state.counters["flows"] = static_cast<double>(snapshot->flows.size());
  state.counters["series"] = static_cast<double>(series);
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["per_series"] = benchmark::Counter(
      static_cast<double>(series), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_RenderMetricsText)->Unit(benchmark::kMillisecond);

// The same snapshot as protobuf (what a Prometheus with native histograms scrapes): bytes is the
// body's size, text_bytes the text body's.
void BM_RenderMetricsProtobuf(benchmark::State& state) {
  auto aggregator = aggregate(20000);
  std::shared_ptr<const aggregate::Snapshot> snapshot = aggregator->snapshot(1, 1);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body = serve::render_metrics_protobuf(*snapshot);
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["flows"] = static_cast<double>(snapshot->flows.size());
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["services"] = static_cast<double>(snapshot->services.size());
  state.counters["text_bytes"] = static_cast<double>(serve::render_metrics_text(*snapshot).size());
}
BENCHMARK(BM_RenderMetricsProtobuf)->Unit(benchmark::kMillisecond);

// Bytes of the two formats where the histograms dominate: 1000 services (outbound, a port each),
// one flow each, 200 RTT samples and a connect each, RTTs spread from 20 us to 100 ms.
void BM_ServicesTextVersusProtobuf(benchmark::State& state) {
  aggregate::Aggregator agg(aggregate::AggregatorConfig{.max_series = 1'000'000});
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> rtt_us(6.0, 1.5);
  for (uint64_t s = 0; s < 1000; ++s) {
    uint16_t port = static_cast<uint16_t>(10000 + s);
    agg.on_event(test::EventBuilder(event::EventType::connect, s + 1).ports(40000, port).latency(150'000 + s * 1000));
    for (int n = 0; n < 200; ++n)
      agg.on_event(test::EventBuilder(event::EventType::rtt, s + 1)
                       .ports(40000, port)
                       .stats(0, 1000 + uint32_t(n), 0, 0, static_cast<uint32_t>(std::min(rtt_us(rng), 1e5)) + 20));
  }
  auto snapshot = agg.snapshot(1, 1);
  size_t text = 0, protobuf = 0;
  for (auto _ : state) {
    text = serve::render_metrics_text(*snapshot).size();
    protobuf = serve::render_metrics_protobuf(*snapshot).size();
  }
  state.counters["services"] = static_cast<double>(snapshot->services.size());
  state.counters["text_bytes"] = static_cast<double>(text);
  state.counters["protobuf_bytes"] = static_cast<double>(protobuf);
}
BENCHMARK(BM_ServicesTextVersusProtobuf)->Unit(benchmark::kMillisecond);

// Publishing: what the reader thread spends on a snapshot. listed:0 is the periodic snapshot (no
// connection list); listed:all is what /api/v1/connections asks for at the most.
void BM_Snapshot(benchmark::State& state) {
  auto aggregator = aggregate(static_cast<size_t>(state.range(0)));
  size_t listed = state.range(1) ? SIZE_MAX : 0;
  for (auto _ : state) {
    auto snapshot = aggregator->snapshot(1, 1, listed);
    benchmark::DoNotOptimize(snapshot.get());
  }
  state.counters["connections"] = static_cast<double>(aggregator->connections().size());
  state.counters["flows"] = static_cast<double>(aggregator->flows().size());
}
BENCHMARK(BM_Snapshot)
    ->ArgNames({"live", "listed_all"})
    ->Args({1000, 0})
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace netwatch::bench

BENCHMARK_MAIN();
