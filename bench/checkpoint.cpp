// netwatch_checkpoint: what a restart costs the agent (README "Restarts and upgrades lose
// nothing"): saving its aggregation at a clean stop and restoring it at the next start, with 1k,
// 100k and 1M live connections over ~1000 flows (synthetic traffic through the real aggregator).
// While the new agent restores, events wait in the ring buffer: restore time x event rate must
// fit in --ring-size.
#include <benchmark/benchmark.h>

#include "agent/checkpoint.h"
#include "agent/event_reader.h"
#include "bench/synthetic_traffic.h"

namespace netwatch::bench {
namespace {

AggregatorConfig config_for(size_t live) {
  AggregatorConfig config;
  config.max_connections = live + 16;
  return config;
}

std::unique_ptr<Aggregator> aggregate(size_t live) {
  auto aggregator = std::make_unique<Aggregator>(config_for(live));
  EventReader reader(*aggregator);
  SyntheticTraffic traffic(live, 1000);
  for (const nw_event& e : traffic.opening()) reader.deliver(&e, sizeof(e));
  std::vector<nw_event> events;
  traffic.next(2 * live, events);
  for (const nw_event& e : events) reader.deliver(&e, sizeof(e));
  return aggregator;
}

void BM_SaveCheckpoint(benchmark::State& state) {
  auto aggregator = aggregate(static_cast<size_t>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::vector<uint8_t> checkpoint = save_checkpoint(*aggregator, AgentHealth{});
    bytes = checkpoint.size();
    benchmark::DoNotOptimize(checkpoint.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["bytes_per_connection"] = static_cast<double>(bytes) / static_cast<double>(state.range(0));
}
BENCHMARK(BM_SaveCheckpoint)->ArgName("live")->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

void BM_RestoreCheckpoint(benchmark::State& state) {
  const size_t live = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> checkpoint = save_checkpoint(*aggregate(live), AgentHealth{});
  for (auto _ : state) {
    state.PauseTiming();
    auto fresh = std::make_unique<Aggregator>(config_for(live));
    state.ResumeTiming();
    std::optional<Restored> restored = restore_checkpoint(checkpoint, *fresh);
    if (!restored || restored->connections != live) state.SkipWithError("restored a different number of connections");
    state.PauseTiming();
    fresh.reset();  // freeing is not restoring
    state.ResumeTiming();
  }
}
BENCHMARK(BM_RestoreCheckpoint)->ArgName("live")->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace netwatch::bench

BENCHMARK_MAIN();
