#include "serve/snapshot_store.h"

namespace netwatch::serve {

void SnapshotStore::publish(std::shared_ptr<const aggregate::Snapshot> snapshot) {
  std::lock_guard lock(mutex_);
  latest_ = std::move(snapshot);
}

std::shared_ptr<const aggregate::Snapshot> SnapshotStore::latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

std::shared_ptr<const aggregate::Snapshot> SnapshotStore::request_connections(size_t limit,
                                                                              std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (closed_) return nullptr;
  auto request = std::make_shared<Request>();
  request->limit = limit;
  waiting_.push_back(request);
  if (!answered_.wait_for(lock, timeout, [&] { return request->answered; })) {
    std::erase(waiting_, request);
    return nullptr;
  }
  return std::move(request->answer);
}

std::optional<size_t> SnapshotStore::connections_wanted() const {
  std::lock_guard lock(mutex_);
  if (waiting_.empty()) return std::nullopt;
  size_t limit = 0;
  for (const auto& r : waiting_) limit = std::max(limit, r->limit);
  return limit;
}

void SnapshotStore::answer_connections(const std::shared_ptr<const aggregate::Snapshot>& snapshot, size_t limit) {
  {
    std::lock_guard lock(mutex_);
    std::erase_if(waiting_, [&](const std::shared_ptr<Request>& r) {
      if (r->limit > limit) return false;  // asked for more after the snapshot was begun: the next one
      r->answer = snapshot;
      r->answered = true;
      return true;
    });
  }
  answered_.notify_all();
}

void SnapshotStore::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (const auto& r : waiting_) r->answered = true;
    waiting_.clear();
  }
  answered_.notify_all();
}

}  // namespace netwatch::serve
