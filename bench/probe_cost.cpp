// netwatch_probe_cost: what netwatch's probes cost per hit (bpf_stats run_time_ns / run_cnt), next
// to an empty tp_btf program and a bpftrace one-liner on the same tracepoints, all attached in the
// same loopback run (issue 6, target 1). The VMs are noisy, so only ratios taken in one run are
// trusted: every program sees the same hits under the same load at the same time.
#include <bpf/libbpf.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "bench/bench_main.h"
#include "bench/bpf_run_time.h"
#include "bench/bpftrace_peers.h"
#include "bench/candidate_object.h"
#include "bench/cost_report.h"
#include "bench/loopback_load.h"
#include "empty.skel.h"
#include "kernel/probe_set.h"
#include "tests/support/child_process.h"
#include "transport/event_reader.h"
#include "util/log.h"

namespace netwatch::bench {
namespace {

// One row per tracepoint netwatch attaches to. empty_prog is the floor on the same tracepoint and
// peer the bpftrace program the target compares with: the one doing the same job.
struct Hook {
  const char* path;
  const char* tracepoint;
  const char* netwatch_prog;
  const char* empty_prog;  // nullptr: no floor, no verdict
  const char* peer;
};
constexpr Hook kHooks[] = {
    {"ACK", "tcp_probe", "btf_probe", "empty_probe", kAggregatePeer.label},
    {"connect", "inet_sock_set_state", "btf_set_state", "empty_set_state", kToolPeer.label},
    {"retransmit", "tcp_retransmit_skb", "btf_retransmit", "empty_retransmit", kToolPeer.label},
    {"synack", "tcp_retransmit_synack", "btf_retransmit_synack", nullptr, nullptr},
};
constexpr const BpftracePeer* kPeers[] = {&kAggregatePeer, &kToolPeer};

struct Options {
  int seconds = 10;
  uint16_t port = 15201;  // the ACK-path stream; port + 1 is the lossy stream
  uint32_t connects = 2000;
  uint32_t loss_one_in = 20;  // 0: no lossy stream, retransmit path not measured
  uint64_t lossy_bitrate = 50'000'000;
  uint32_t lossy_segment_bytes = 1400;  // small segments, so the lossy stream has many to lose
  uint32_t lossy_streams = 8;  // ~10x the retransmit hits of one connection: a steadier mean
  bool json = false;
  bool check = false;
  bool verbose = false;
  bool empty_first = false;
  std::vector<std::string> candidates;  // .bpf.o files
};

class EventCounter : public event::EventSink {
 public:
  void on_event(const event::Event&) override { ++events_; }
  uint64_t events() const { return events_; }

 private:
  std::atomic<uint64_t> events_{0};
};

struct EmptyDeleter {
  void operator()(empty_bpf* skel) const { empty_bpf__destroy(skel); }
};

std::unique_ptr<empty_bpf, EmptyDeleter> start_empty_programs() {
  std::unique_ptr<empty_bpf, EmptyDeleter> skel(empty_bpf__open_and_load());
  if (!skel) throw util::FatalError(std::string("loading the empty programs failed: ") + std::strerror(errno));
  if (int err = empty_bpf__attach(skel.get()))
    throw util::FatalError(std::string("attaching the empty programs failed: ") + std::strerror(-err));
  return skel;
}

// A bpftrace peer, running, and the ids of the programs it loaded.
struct RunningPeer {
  const BpftracePeer* peer;
  std::unique_ptr<nwtest::ChildProcess> process;
  std::vector<uint32_t> ids;
};

// Starts a peer and returns once it holds a program on every tracepoint its script names.
RunningPeer start_peer(const BpftracePeer& peer) {
  RunningPeer running{&peer,
                      std::make_unique<nwtest::ChildProcess>(std::vector<std::string>{"bpftrace", "-e", peer.script},
                                                             nwtest::kBackgroundProgram),
                      {}};
  size_t wanted = 0;
  for (const char* s = peer.script; (s = std::strstr(s, "tracepoint:")); ++s) ++wanted;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (true) {
    if (running.process->exit_status())
      throw util::FatalError(std::string(peer.label) + " exited: " + running.process->output());
    if (std::chrono::steady_clock::now() > deadline)
      throw util::FatalError(std::string(peer.label) + " did not load in 60 s: " + running.process->output());
    running.ids = programs_held_by(running.process->pid());
    size_t on_tracepoints = 0;
    for (uint32_t id : running.ids)
      if (auto rt = read_run_time(id))
        for (const Hook& h : kHooks) on_tracepoints += std::string(h.tracepoint).substr(0, 15) == rt->name;
    if (on_tracepoints >= wanted) break;
    sleep_unless_stopped(std::chrono::milliseconds(50));
  }
  return running;
}

std::string gbits(double bps) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f Gbit/s", bps / 1e9);
  return buf;
}

// A program measured over the window: where it is, whose it is, its id.
struct Measured {
  const Hook* hook;
  std::string source;
  uint32_t id;
};

std::map<uint32_t, ProgramRunTime> snapshot(const std::vector<Measured>& programs) {
  std::map<uint32_t, ProgramRunTime> out;
  for (const Measured& m : programs)
    if (auto rt = read_run_time(m.id)) out[m.id] = *rt;
  return out;
}

// Every program on one tracepoint sees every hit; a count that differs says one attached late.
void warn_on_uneven_hits(const CostRun& run) {
  for (const ProgramCost& a : run.programs)
    for (const ProgramCost& b : run.programs) {
      if (a.tracepoint != b.tracepoint || &a >= &b) continue;
      uint64_t hi = std::max(a.hits, b.hits), lo = std::min(a.hits, b.hits);
      if (hi > 100 && static_cast<double>(hi - lo) > 0.01 * static_cast<double>(hi))
        util::log_warn(a.tracepoint + ": " + a.source + " saw " + std::to_string(a.hits) + " hits, " + b.source + " " +
                       std::to_string(b.hits) + "; the programs were not all attached for the whole window");
    }
}

int run(const Options& opt) {
  RunTimeAccounting accounting;
  // Programs on a tracepoint run in attach order. The first pays what they all share cold (the
  // tracepoint's dispatch, the socket's storage pointer): attached first, the empty program
  // charges that to the floor; attached last, to netwatch.
  std::unique_ptr<empty_bpf, EmptyDeleter> empty;
  if (opt.empty_first) empty = start_empty_programs();
  // Candidates attach before netwatch: any bias of going first goes against a proposed change.
  std::vector<std::unique_ptr<CandidateObject>> candidates;
  for (const std::string& path : opt.candidates) candidates.push_back(CandidateObject::load(path));
  auto probes = kernel::ProbeSet::start(kernel::ProbeOptions{});
  EventCounter counter;
  transport::EventReader reader(*probes, counter);
  std::atomic<bool> drain_failed{false};
  std::string drain_error;
  // Drains on netwatch's own timer so the ring never fills and the ACK path stays wakeup-free.
  std::jthread drainer([&](std::stop_token st) {
    try {
      while (!st.stop_requested()) {
        reader.poll();
        for (auto& c : candidates) c->drain();
      }
    } catch (const std::exception& e) {
      drain_error = e.what();
      drain_failed = true;
    }
  });
  if (!empty) empty = start_empty_programs();
  std::vector<RunningPeer> peers;
  for (const BpftracePeer* peer : kPeers) peers.push_back(start_peer(*peer));
  // Programs are loaded before they are attached; attaching a tracepoint takes microseconds.
  sleep_unless_stopped(std::chrono::milliseconds(500));

  std::vector<Measured> measured;
  for (const Hook& hook : kHooks) {
    for (const event::ProgramStats& s : probes->program_stats())
      if (s.name == hook.netwatch_prog) measured.push_back({&hook, kNetwatch, s.id});
    for (const auto& c : candidates)
      for (const CandidateObject::Program& p : c->programs())
        if (p.tracepoint == hook.tracepoint) measured.push_back({&hook, c->label(), p.id});
    if (!hook.empty_prog) continue;
    bpf_program* prog = bpf_object__find_program_by_name(empty->obj, hook.empty_prog);
    measured.push_back({&hook, kEmpty, program_id(bpf_program__fd(prog))});
    // The kernel keeps 15 characters of a program's name; bpftrace names them after the tracepoint.
    for (const RunningPeer& peer : peers)
      for (uint32_t id : peer.ids)
        if (auto rt = read_run_time(id); rt && std::string(hook.tracepoint).substr(0, 15) == rt->name)
          measured.push_back({&hook, peer.peer->label, id});
  }

  IperfPair stream({opt.port, std::chrono::seconds(opt.seconds), std::nullopt, std::nullopt}, g_stop);
  std::unique_ptr<InputLoss> loss;
  std::unique_ptr<IperfPair> lossy;
  if (opt.loss_one_in) {
    uint16_t lossy_port = static_cast<uint16_t>(opt.port + 1);
    loss = std::make_unique<InputLoss>(lossy_port, opt.loss_one_in);
    lossy = std::make_unique<IperfPair>(
        IperfFlow{lossy_port, std::chrono::seconds(opt.seconds), opt.lossy_bitrate, opt.lossy_segment_bytes,
                  opt.lossy_streams},
        g_stop);
  }

  auto before = snapshot(measured);
  auto t0 = std::chrono::steady_clock::now();
  stream.start_client();
  if (lossy) lossy->start_client();
  sleep_unless_stopped(std::chrono::milliseconds(opt.seconds * 1000 / 2));
  uint32_t connects = connect_burst(opt.connects, g_stop);
  stream.wait(g_stop);
  if (lossy) lossy->wait(g_stop);
  auto after = snapshot(measured);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  uint64_t dropped = loss ? loss->dropped() : 0;
  loss.reset();  // the nftables table goes first: nothing below needs it
  for (RunningPeer& peer : peers) peer.process->stop();
  drainer.request_stop();
  drainer.join();
  if (drain_failed) throw util::FatalError("draining netwatch's events failed: " + drain_error);
  reader.drain();

  CostRun result;
  result.seconds = seconds;
  result.machine = machine_line();
  result.accounting = accounting.method();
  result.iperf_bits_per_second = stream.received_bits_per_second();
  result.load = "iperf3 127.0.0.1:" + std::to_string(opt.port) + " " + gbits(result.iperf_bits_per_second);
  if (lossy)
    result.load += "; iperf3 :" + std::to_string(opt.port + 1) + " " + gbits(lossy->received_bits_per_second()) +
                   (opt.lossy_streams > 1 ? " over " + std::to_string(opt.lossy_streams) + " connections" : "") +
                   " in " + std::to_string(opt.lossy_segment_bytes) + "-byte segments, 1 in " +
                   std::to_string(opt.loss_one_in) + " dropped on input (" + std::to_string(dropped) + " packets)";
  result.load += "; " + std::to_string(connects) + " connects";
  result.events_read = counter.events();
  result.events_lost = probes->counters().total_lost();
  for (const BpftracePeer* peer : kPeers) {
    result.peers.push_back(std::string(peer->label) + ": " + peer->description);
    result.peer_labels.push_back(peer->label);
  }
  for (const Hook& hook : kHooks)
    if (hook.peer) result.peer_for_path[hook.path] = hook.peer;
  for (const Measured& m : measured) {
    if (!before.count(m.id) || !after.count(m.id))
      throw util::FatalError(m.source + " program on " + m.hook->tracepoint + " disappeared during the run");
    const ProgramRunTime &b = before[m.id], &a = after[m.id];
    result.programs.push_back({m.hook->path, m.hook->tracepoint, m.source, a.name, m.id, a.run_cnt - b.run_cnt,
                               a.run_time_ns - b.run_time_ns});
  }
  warn_on_uneven_hits(result);

  std::vector<PathVerdict> verdicts = judge(result);
  Targets targets;
  if (opt.json)
    std::puts(render_json(result, verdicts, targets).dump(2).c_str());
  else
    std::fputs(render_text(result, verdicts, targets).c_str(), stdout);
  std::fflush(stdout);

  // A path the load should have exercised but did not means the benchmark is broken, not fast.
  for (const PathVerdict& v : verdicts)
    if (v.target_peer && !v.measured && (v.path != "retransmit" || opt.loss_one_in))
      throw util::FatalError("no hits on the " + v.path + " path (" + v.tracepoint + "): nothing was measured");
  if (opt.check)
    for (const PathVerdict& v : verdicts)
      if (v.target_peer && v.measured && !v.met(targets)) return 1;
  return 0;
}

}  // namespace
}  // namespace netwatch::bench

int main(int argc, char** argv) {
  using namespace netwatch;
  using bench::Options;
  Options opt;
  bool smoke = false;
  CLI::App app{
      "netwatch_probe_cost: netwatch's BPF programs' cost per hit against an empty program and bpftrace, "
      "in one loopback iperf3 run (needs root)"};
  app.add_option("--seconds", opt.seconds, "length of the iperf3 streams")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--port", opt.port, "iperf3 port of the ACK-path stream; the next port is the lossy stream's")
      ->check(CLI::Range(1024, 65534))
      ->capture_default_str();
  app.add_option("--connects", opt.connects, "loopback connections made halfway through")->capture_default_str();
  app.add_option("--loss-one-in", opt.loss_one_in, "drop 1 in N segments of the lossy stream; 0: no lossy stream")
      ->capture_default_str();
  app.add_option("--lossy-bitrate", opt.lossy_bitrate, "bits/s of the lossy stream")->capture_default_str();
  app.add_flag("--smoke", smoke, "a short run that checks the benchmark works: 2 s, 200 connects");
  app.add_flag("--json", opt.json, "print JSON instead of the table");
  app.add_flag("--check", opt.check, "exit 1 when a target is missed");
  app.add_option("--candidate", opt.candidates,
                 "also measure the tp_btf programs of this .bpf.o (a modified copy of bpf/netwatch.bpf.c)")
      ->check(CLI::ExistingFile);
  app.add_flag("--verbose", opt.verbose, "log what is started and loaded");
  app.add_option("--lossy-streams", opt.lossy_streams, "connections of the lossy stream, each at --lossy-bitrate")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_flag("--empty-first", opt.empty_first,
               "attach the empty programs before netwatch (default: after it), so that they pay the cold "
               "dispatch of each tracepoint");
  CLI11_PARSE(app, argc, argv);
  if (smoke) {
    opt.seconds = 2;
    opt.connects = 200;
  }
  util::set_log_level(opt.verbose ? util::LogLevel::info : util::LogLevel::warn);

  bench::install_stop_signals();
  return bench::guarded_main("netwatch_probe_cost", [&] { return bench::run(opt); });
}
