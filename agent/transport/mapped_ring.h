// A BPF ring buffer map mapped into this process, and a wait for the kernel's wakeups: what
// libbpf's ring_buffer__new() sets up (ringbuf.c, ring_buffer__add), without its consumer, so
// that RingConsumer can read the records in place.
#pragma once

#include "transport/ring_consumer.h"

namespace netwatch::transport {

class MappedRing {
 public:
  // map_fd: a BPF_MAP_TYPE_RINGBUF map (the caller keeps it open). Throws FatalError.
  explicit MappedRing(int map_fd);
  ~MappedRing();
  MappedRing(const MappedRing&) = delete;
  MappedRing& operator=(const MappedRing&) = delete;

  RingLayout layout() const { return layout_; }
  // Waits until the kernel wakes the ring's readers (a forced wakeup, or data already waiting
  // when called) or timeout_ms pass. Returns 0, or -errno (-EINTR when a signal came).
  int wait(int timeout_ms);

 private:
  void unmap();

  RingLayout layout_{};
  void* consumer_page_ = nullptr;
  void* producer_area_ = nullptr;  // the producer page, then the data twice
  size_t page_size_ = 0, producer_bytes_ = 0;
  int epoll_fd_ = -1;
};

}  // namespace netwatch::transport
