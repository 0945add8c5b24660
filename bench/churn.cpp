#include "bench/churn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/log.h"

namespace netwatch::bench {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

struct ThreadCount {
  uint64_t connections = 0, failures = 0;
};

// One client thread: connect, wait for the server's FIN, close; paced when interval is non-zero.
ThreadCount churn_thread(uint16_t port, Clock::duration interval, Clock::time_point start, Clock::time_point end,
                         const std::atomic<bool>& stop) {
  ThreadCount count;
  sockaddr_in addr = loopback(port);
  Clock::time_point next = start;
  for (Clock::time_point now = Clock::now(); now < end && !stop; now = Clock::now()) {
    if (interval.count()) {
      // An absolute schedule, so a late wakeup is caught up; but not after a long stall.
      if (now - next > std::chrono::milliseconds(100)) next = now;
      if (next > now) std::this_thread::sleep_until(next);
      next += interval;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw util::FatalError(std::string("socket: ") + std::strerror(errno));
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ++count.failures;
    } else {
      char byte;
      while (read(fd, &byte, 1) < 0 && errno == EINTR) {
      }
      ++count.connections;
    }
    close(fd);
  }
  return count;
}

}  // namespace

ChurnLoad::ChurnLoad(unsigned acceptors) {
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof(addr);
  if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener_, 4096) != 0 || getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    if (listener_ >= 0) close(listener_);
    throw util::FatalError(std::string("churn: listening on 127.0.0.1 failed: ") + std::strerror(err));
  }
  port_ = ntohs(addr.sin_port);
  for (unsigned i = 0; i < std::max(1u, acceptors); ++i)
    acceptors_.emplace_back([fd = listener_] {
      // Accept and close at once: the server sends the FIN, the client reads it and closes.
      while (true) {
        int conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn >= 0) {
          close(conn);
        } else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE && errno != ENFILE) {
          return;  // shutdown() in the destructor: EINVAL
        }
      }
    });
}

ChurnLoad::~ChurnLoad() {
  shutdown(listener_, SHUT_RDWR);  // wakes the acceptors blocked in accept4()
  for (std::thread& t : acceptors_) t.join();
  close(listener_);
}

ChurnResult ChurnLoad::run(const ChurnOptions& options, const std::atomic<bool>& stop) {
  unsigned threads = std::max(1u, options.threads);
  Clock::duration interval{0};
  if (options.rate > 0)
    interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(threads / options.rate));
  std::vector<ThreadCount> counts(threads);
  std::vector<std::exception_ptr> errors(threads);
  Clock::time_point start = Clock::now(), end = start + options.duration;
  {
    std::vector<std::jthread> clients;
    for (unsigned i = 0; i < threads; ++i)
      clients.emplace_back([&, i] {
        try {
          // Threads start a fraction of an interval apart, so paced connects do not come in bursts.
          counts[i] = churn_thread(port_, interval, start + interval * i / threads, end, stop);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      });
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  ChurnResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const ThreadCount& c : counts) {
    result.connections += c.connections;
    result.failures += c.failures;
  }
  if (result.connections == 0 && !stop)
    throw util::FatalError("churn: no connection to 127.0.0.1:" + std::to_string(port_) + " completed (" +
                           std::to_string(result.failures) + " connect errors)");
  return result;
}

}  // namespace netwatch::bench
