// Connection churn on loopback: client threads that connect to a listener of their own, as fast as
// they can or at a fixed total rate, each connection short-lived. The listener accepts and closes
// at once and the client closes when it reads the end of stream, so the server end takes the
// TIME_WAIT and client ports are free again at once: the rate is bounded by the machine, not by
// the ephemeral port range.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace netwatch::bench {

struct ChurnOptions {
  unsigned threads = 2;    // client threads
  unsigned acceptors = 1;  // threads accepting on the listener
  double rate = 0;         // connections/s in total; 0: as fast as possible
  std::chrono::milliseconds duration{5000};
};

struct ChurnResult {
  uint64_t connections = 0;  // completed connect + end-of-stream + close round trips
  uint64_t failures = 0;     // connect() errors
  double seconds = 0;        // from the first connect to the last thread's end
  double per_second() const { return seconds > 0 ? static_cast<double>(connections) / seconds : 0; }
};

// Listens on 127.0.0.1 (a free port) for as long as it lives; run() may be called many times.
class ChurnLoad {
 public:
  explicit ChurnLoad(unsigned acceptors = 1);
  ~ChurnLoad();
  ChurnLoad(const ChurnLoad&) = delete;
  ChurnLoad& operator=(const ChurnLoad&) = delete;

  uint16_t port() const { return port_; }
  // Churns for options.duration (or until stop); throws FatalError when nothing connects at all.
  ChurnResult run(const ChurnOptions& options, const std::atomic<bool>& stop);

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::vector<std::thread> acceptors_;
};

}  // namespace netwatch::bench
