// netwatch_replay: synthetic raw events through the real reader and aggregator at 1k, 100k and
// 1M live connections (issue 6, target 4: >= 20 M events/s per core at 100k; <= 150
// instructions per event under callgrind). The records are laid out in a ring buffer as the
// kernel lays them out (MemoryRing) and read by the agent's own path: EventReader::drain ->
// RingConsumer (in place) -> Aggregator.
//
// Google Benchmark mode (the default) reports events/s of CPU time. --fixed-events N instead
// replays exactly N events once and brackets only the replay with callgrind's collection toggle,
// so `valgrind --tool=callgrind --collect-atstart=no` counts the instructions of those N events
// alone (bench/callgrind_replay.sh).
#include <benchmark/benchmark.h>
#include <valgrind/callgrind.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "aggregate/aggregator.h"
#include "transport/event_reader.h"
#include "transport/memory_ring.h"
#include "bench/synthetic_traffic.h"

namespace netwatch::bench {
namespace {

constexpr size_t kFlows = 1000;  // every one with full detail: the budget is raised (config_for)
constexpr size_t kBatch = 8192;         // events per drain: about 1.3 MiB of ring buffer
constexpr size_t kRingBytes = 4u << 20;  // the agent's default ring size

aggregate::AggregatorConfig config_for(size_t live) {
  aggregate::AggregatorConfig c;
  c.max_connections = live + 16;  // every live connection tracked, none evicted
  c.max_series = 1'000'000;       // every flow its own: the same work per event as before the series budget
  c.churn_new_flows_per_minute = 0;
  return c;
}

// An aggregator holding `live` connections, and the traffic that keeps them live.
struct Replay {
  explicit Replay(size_t live)
      : aggregator(config_for(live)), ring(kRingBytes), reader(ring.layout(), aggregator), traffic(live, kFlows) {
    batch = traffic.opening();
    write_batch();  // more than a ring's worth at 1M: drained as it fills
    reader.drain();
    batch.reserve(kBatch + 1);
  }
  // The next batch of records, written into the ring as the kernel writes them (not measured).
  void refill(size_t events = kBatch) {
    batch.clear();
    traffic.next(events, batch);
    write_batch();
  }
  void write_batch() {
    for (const nw_event& e : batch)
      while (!ring.write(&e, sizeof(e))) reader.drain();
  }

  aggregate::Aggregator aggregator;
  transport::MemoryRing ring;
  transport::EventReader reader;
  SyntheticTraffic traffic;
  std::vector<nw_event> batch;
};

void BM_Replay(benchmark::State& state) {
  Replay replay(static_cast<size_t>(state.range(0)));
  uint64_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    replay.refill();
    state.ResumeTiming();
    replay.reader.drain();
    events += replay.batch.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
  state.counters["live"] = static_cast<double>(replay.aggregator.connections().size());
  state.counters["flows"] = static_cast<double>(replay.aggregator.flows().size());
  state.counters["decode_errors"] = static_cast<double>(replay.reader.decode_errors());
}
BENCHMARK(BM_Replay)->ArgName("live")->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

// The same records read the way libbpf's ring_buffer__consume() reads them, for comparison: a
// callback per record that copies it (EventReader::deliver), consumer_pos released after each.
void BM_ReplayCopied(benchmark::State& state) {
  Replay replay(static_cast<size_t>(state.range(0)));
  transport::EventReader copier(replay.aggregator);
  transport::RingConsumer ring(replay.ring.layout());
  uint64_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    replay.refill();
    state.ResumeTiming();
    while (ring.read(1, [&](const void* data, size_t size) { copier.deliver(data, size); })) ring.release();
    copier.flush();
    events += replay.batch.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
}
BENCHMARK(BM_ReplayCopied)->ArgName("live")->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

int fixed_replay(size_t live, size_t events) {
  Replay replay(live);
  size_t done = 0;
  while (done < events) {
    replay.refill(std::min(kBatch, events - done));
    CALLGRIND_TOGGLE_COLLECT;
    replay.reader.drain();
    CALLGRIND_TOGGLE_COLLECT;
    done += replay.batch.size();
  }
  std::printf("replayed %zu events at %zu live connections (%zu tracked, %zu flows, %llu decode errors)\n", done, live,
              replay.aggregator.connections().size(), replay.aggregator.flows().size(),
              static_cast<unsigned long long>(replay.reader.decode_errors()));
  return 0;
}

}  // namespace
}  // namespace netwatch::bench

int main(int argc, char** argv) {
  // Our own two flags first; everything else is Google Benchmark's.
  size_t fixed_events = 0, live = 100000;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--fixed-events=", 15) == 0)
      fixed_events = std::strtoull(argv[i] + 15, nullptr, 10);
    else if (std::strncmp(argv[i], "--live=", 7) == 0)
      live = std::strtoull(argv[i] + 7, nullptr, 10);
    else
      rest.push_back(argv[i]);
  }
  if (fixed_events) return netwatch::bench::fixed_replay(live, fixed_events);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) {
    std::fprintf(stderr, "netwatch_replay: also --fixed-events=N [--live=N] (the callgrind mode)\n");
    return 2;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
