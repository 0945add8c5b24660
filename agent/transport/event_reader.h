// Drains the kernel's events on a timer. The programs submit without waking us (a wakeup per
// event costs the reader far more than the event's copy), so each poll() waits up to drain_interval_ms -- less when
// the kernel forces a wakeup because the buffer is filling -- and then consumes everything.
// Ring buffer records are handed to the sink where they lie (RingConsumer); the perf buffer's
// are copied first.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "event/event.h"
#include "event/event_record.h"
#include "event/event_sink.h"
#include "kernel/probe_set.h"
#include "transport/ring_consumer.h"

struct perf_buffer;

namespace netwatch::transport {

struct ReaderOptions {
  int drain_interval_ms = 100;
  uint32_t perf_pages_per_cpu = 64;  // perf buffer fallback only
};

class MappedRing;

class EventReader {
 public:
  EventReader(const kernel::ProbeSet& probes, event::EventSink& sink, const ReaderOptions& options = {});
  // A reader of a ring buffer laid out in memory by the caller (benchmarks, tests, fuzzers):
  // drain() reads it as it reads the kernel's; poll() does not wait.
  EventReader(RingLayout ring, event::EventSink& sink);
  // A reader with no transport: records arrive only through deliver() (tests).
  explicit EventReader(event::EventSink& sink);
  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // Waits at most one drain interval, drains, and returns the number of records read.
  // Returns 0 after EINTR so a signal can stop the caller's loop.
  int poll();
  // Drains whatever is waiting without blocking.
  int drain();

  uint64_t drains() const { return drains_; }
  uint64_t decode_errors() const { return decode_errors_; }
  uint64_t records() const { return records_; }

  // Checks and copies one raw record (any alignment) for the sink, or counts it as a decode
  // error: the perf buffer's path. Records reach the sink in batches of kBatch: poll() and
  // drain() end with flush(), which hands over the rest. Public for tests, which feed it bytes.
  void deliver(const void* data, size_t size);
  void flush();
  static constexpr size_t kBatch = 32;

 private:
  void drain_ring();

  event::EventSink& sink_;
  std::array<event::EventRecord, kBatch> batch_;  // views: into the ring buffer, or into copies_
  // deliver()'s records: libbpf hands the perf buffer's space back per record, and its records
  // are only 4-byte aligned. 5 KiB: stays in L1 between deliver() and the sink.
  std::array<nw_event, kBatch> copies_;
  size_t batched_ = 0;
  ReaderOptions options_;
  std::unique_ptr<MappedRing> mapped_;  // the kernel's ring buffer, when it is the transport
  std::optional<RingConsumer> ring_;
  perf_buffer* perf_ = nullptr;
  uint64_t drains_ = 0;
  uint64_t decode_errors_ = 0;
  uint64_t records_ = 0;
};

}  // namespace netwatch::transport
