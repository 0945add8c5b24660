#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "aggregate/snapshot.h"

namespace netwatch::serve {

// Where the reader thread publishes snapshots and HTTP handlers find them. A scrape only ever
// copies a shared_ptr, so it never blocks the reader and the reader never waits on a scrape.
//
// The connection list is most of a snapshot's memory (it grows with every tracked connection),
// so periodic snapshots carry none. A handler that needs it asks, and the reader thread answers
// at its next drain with a snapshot listing the connections asked for; that snapshot lives only
// as long as the answers holding it.
class SnapshotStore {
 public:
  // Reader thread: the periodic snapshot.
  void publish(std::shared_ptr<const aggregate::Snapshot> snapshot);
  std::shared_ptr<const aggregate::Snapshot> latest() const;

  // HTTP threads: a snapshot taken after this call that lists the `limit` most recently active
  // connections; nullptr when not answered within timeout, or once closed.
  std::shared_ptr<const aggregate::Snapshot> request_connections(size_t limit, std::chrono::milliseconds timeout);
  // Reader thread: the largest limit asked for and not answered yet.
  std::optional<size_t> connections_wanted() const;
  // Reader thread: answers every waiting request whose limit is at most `limit`.
  void answer_connections(const std::shared_ptr<const aggregate::Snapshot>& snapshot, size_t limit);
  // The reader is stopping: waiting and later requests get nullptr at once.
  void close();

 private:
  struct Request {
    size_t limit = 0;
    bool answered = false;
    std::shared_ptr<const aggregate::Snapshot> answer;
  };

  mutable std::mutex mutex_;  // guards pointer copies and the request list, nothing longer
  std::condition_variable answered_;
  std::shared_ptr<const aggregate::Snapshot> latest_;
  std::vector<std::shared_ptr<Request>> waiting_;
  bool closed_ = false;
};

}  // namespace netwatch::serve
