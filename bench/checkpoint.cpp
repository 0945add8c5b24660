// netwatch_checkpoint: what a restart costs the agent (README "Restarts and upgrades lose
// nothing"): saving its aggregation at a clean stop and restoring it at the next start, with 1k,
// 100k and 1M live connections over ~1000 flows (synthetic traffic through the real aggregator).
// While the new agent restores, events wait in the ring buffer: restore time x event rate must
// fit in --ring-size.
#include "persist/checkpoint.h"

#include <benchmark/benchmark.h>

#include "bench/synthetic_traffic.h"

namespace netwatch::bench {
namespace {

std::unique_ptr<aggregate::Aggregator> aggregate(size_t live) {
  return aggregate_synthetic(live, 1000, 2 * live);
}

void BM_SaveCheckpoint(benchmark::State& state) {
  auto aggregator = aggregate(static_cast<size_t>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::vector<uint8_t> checkpoint = persist::save_checkpoint(*aggregator, aggregate::AgentHealth{});
    bytes = checkpoint.size();
    benchmark::DoNotOptimize(checkpoint.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["bytes_per_connection"] = static_cast<double>(bytes) / static_cast<double>(state.range(0));
}
BENCHMARK(BM_SaveCheckpoint)->ArgName("live")->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

void BM_RestoreCheckpoint(benchmark::State& state) {
  const size_t live = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> checkpoint = persist::save_checkpoint(*aggregate(live), aggregate::AgentHealth{});
  for (auto _ : state) {
    state.PauseTiming();
    auto fresh = std::make_unique<aggregate::Aggregator>(aggregate::AggregatorConfig{.max_connections = live + 16});
    state.ResumeTiming();
    std::optional<persist::Restored> restored = persist::restore_checkpoint(checkpoint, *fresh);
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
