// A BPF ring buffer laid out in this process's own memory exactly as the kernel lays one out
// (RingLayout: the data mapped twice in a row), with the kernel's side of it: reserve, commit,
// discard (kernel/bpf/ringbuf.c). Benchmarks, tests and fuzzers run the real RingConsumer and
// EventReader over it; the agent never uses it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/ring_consumer.h"

namespace netwatch::transport {

class MemoryRing {
 public:
  // data_bytes: a power of two, a multiple of the page size. Throws FatalError.
  explicit MemoryRing(size_t data_bytes);
  ~MemoryRing();
  MemoryRing(const MemoryRing&) = delete;
  MemoryRing& operator=(const MemoryRing&) = delete;

  RingLayout layout() const { return layout_; }
  // As bpf_ringbuf_reserve(): space for size bytes after the last reserved record, its header
  // marked busy until commit(); nullptr when the reader has not yet freed enough space.
  void* reserve(uint32_t size);
  // As bpf_ringbuf_submit() / bpf_ringbuf_discard() of a reserved record.
  void commit(void* record, bool discard = false);
  // reserve() + copy + commit(). False when full.
  bool write(const void* data, uint32_t size);

  unsigned long producer_pos() const { return __atomic_load_n(layout_.producer_pos, __ATOMIC_ACQUIRE); }
  unsigned long consumer_pos() const { return __atomic_load_n(layout_.consumer_pos, __ATOMIC_ACQUIRE); }

 private:
  RingLayout layout_{};
  uint8_t* base_ = nullptr;  // consumer page, producer page, data, data again
  size_t page_ = 0, bytes_ = 0;
};

}  // namespace netwatch::transport
