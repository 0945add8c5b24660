// Reads a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) in place. The protocol is libbpf's
// ringbuf_process_ring() (the same positions, header bits and barriers), with one difference:
// records are handed out a batch at a time and consumer_pos moves past a batch only when the
// caller releases it. Until then the kernel cannot reuse that space, so the caller can read the
// records where they lie instead of copying them out. libbpf 1.1 advances consumer_pos after
// every record's callback, so a record must be copied before the callback returns.
#pragma once

#include <linux/bpf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace netwatch::transport {

// The bytes a record of `size` takes in the ring: its 8-byte header, then the record rounded up
// to 8 (kernel/bpf/ringbuf.c).
constexpr unsigned long ring_record_bytes(uint32_t size) {
  return (size + BPF_RINGBUF_HDR_SZ + 7) & ~7ul;
}

// A ring buffer's memory as the kernel lays it out (kernel/bpf/ringbuf.c): the consumer page
// (read-write), the producer page and the data area mapped twice in a row, so that a record
// that wraps past the end of the data is contiguous in memory.
struct RingLayout {
  unsigned long* consumer_pos;        // ours to write; the kernel reads it to find free space
  const unsigned long* producer_pos;  // the kernel's
  const uint8_t* data;                // 2 * (mask + 1) bytes
  unsigned long mask;                 // data size - 1: a power of two
};

class RingConsumer {
 public:
  explicit RingConsumer(RingLayout ring) : ring_(ring) {}

  // Calls on_record(data, size) for each committed record after those read so far, oldest
  // first, at most `max` records (a discarded one counts towards max but is skipped), none at or
  // past position `until`, and stops at the first one still being written (busy). Returns how
  // many records it passed. The data stays valid, and its space the reader's, until release().
  template <class OnRecord>
  size_t read(size_t max, OnRecord&& on_record, unsigned long until = ~0ul) {
    // Locals, not members, in the loop: the compiler keeps them in registers.
    unsigned long pos = holding_ ? pos_ : __atomic_load_n(ring_.consumer_pos, __ATOMIC_ACQUIRE);
    unsigned long end = std::min(__atomic_load_n(ring_.producer_pos, __ATOMIC_ACQUIRE), until);
    const uint8_t* data = ring_.data;
    const unsigned long mask = ring_.mask;
    size_t n = 0;
    for (; n < max && pos < end; ++n) {
      const uint8_t* header = data + (pos & mask);
      // Acquire: the record's bytes were written before the kernel cleared the busy bit.
      uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t*>(header), __ATOMIC_ACQUIRE);
      if (len & (BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) [[unlikely]] {  // one test for the usual case
        if (len & BPF_RINGBUF_BUSY_BIT) break;  // later records wait for it: positions are in order
        pos += ring_record_bytes(len & ~BPF_RINGBUF_DISCARD_BIT);
        continue;
      }
      pos += ring_record_bytes(len);
      on_record(header + BPF_RINGBUF_HDR_SZ, len);
    }
    if (n) {
      pos_ = pos;
      holding_ = true;
    }
    return n;
  }

  // Where the kernel will write its next record: records before it are committed or being written.
  unsigned long produced() const { return __atomic_load_n(ring_.producer_pos, __ATOMIC_ACQUIRE); }

  // Gives the space of every record read so far back to the kernel.
  void release() {
    if (!holding_) return;
    __atomic_store_n(ring_.consumer_pos, pos_, __ATOMIC_RELEASE);  // after our last read of it
    holding_ = false;
  }

 private:
  RingLayout ring_;
  unsigned long pos_ = 0;  // the end of the records read; consumer_pos once released
  bool holding_ = false;   // records read and not released: pos_ is ahead of consumer_pos
};

}  // namespace netwatch::transport
