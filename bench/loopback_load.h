// The traffic the probe-cost benchmark measures under, all on 127.0.0.1: an iperf3 stream (the
// ACK path), a lossy iperf3 stream made lossy by an nftables input-hook drop (the retransmit
// path) and a burst of short connections (the connect path).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tests/support/child_process.h"

namespace netwatch::bench {

struct IperfFlow {
  uint16_t port = 0;
  std::chrono::seconds duration{10};
  std::optional<uint64_t> bitrate;  // bits/s, unlimited when empty
  // Small segments: TCP_MAXSEG, writes of that size and TCP_NODELAY, so that each write leaves as
  // one segment. Loopback passes GSO packets through nftables whole, and one drop of a 64 KiB GSO
  // packet is one retransmission, not dozens.
  std::optional<uint32_t> segment_bytes;
  uint32_t parallel = 1;  // connections (iperf3 --parallel), each at `bitrate`
};

// An iperf3 server and client on one port. The server starts at construction and is ready
// (listening) when the constructor returns; start_client() begins the timed stream.
class IperfPair {
 public:
  IperfPair(const IperfFlow& flow, const std::atomic<bool>& stop);
  void start_client();
  // Waits for the client to finish (its duration plus a margin); throws when it fails.
  void wait(const std::atomic<bool>& stop);
  // Receiver-side throughput from the client's JSON report, once wait() returned.
  double received_bits_per_second() const { return received_bps_; }

 private:
  IperfFlow flow_;
  std::unique_ptr<nwtest::ChildProcess> server_;
  std::unique_ptr<nwtest::ChildProcess> client_;
  double received_bps_ = 0;
};

// An nftables table dropping one in `one_in` segments arriving at a TCP port, on the input hook:
// a segment dropped there was sent, so the sender retransmits it (one dropped on the output hook
// is sent again at once and never counts). The table goes away with this object. Its name carries
// the pid (netwatch_bench_<pid>), so benchmarks run by others on the same machine keep theirs.
class InputLoss {
 public:
  static constexpr const char* kTablePrefix = "netwatch_bench_";
  InputLoss(uint16_t port, uint32_t one_in);
  ~InputLoss();
  InputLoss(const InputLoss&) = delete;
  InputLoss& operator=(const InputLoss&) = delete;
  uint64_t dropped() const;  // the rule's counter
  // Deletes the tables of earlier runs that were killed (their pid is gone).
  static void remove_leftovers();

 private:
  std::string table_;
};

// count connect()+accept()+close() round trips to a listener of our own on 127.0.0.1.
// Returns how many completed before stop was set.
uint32_t connect_burst(uint32_t count, const std::atomic<bool>& stop);

// True once something listens on 127.0.0.1:port (or the wildcard), from /proc/net/tcp.
bool is_listening(uint16_t port);

}  // namespace netwatch::bench
