#include "transport/event_reader.h"

#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/log.h"
#include "transport/mapped_ring.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

namespace netwatch::transport {
namespace {

// A PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW is the header, a u32 size and the bytes.
struct PerfRawSample {
  perf_event_header header;
  uint32_t size;
  char data[];
};

bpf_perf_event_ret on_perf_record(void* ctx, int /*cpu*/, perf_event_header* header) {
  // PERF_RECORD_LOST is not counted here: the program already counted the failed output.
  if (header->type == PERF_RECORD_SAMPLE) {
    auto* sample = reinterpret_cast<PerfRawSample*>(header);
    // perf pads raw data so that size + 4 is a multiple of 8 (perf_prepare_sample()): a
    // 160-byte event arrives with size 164. The padding is not part of the record.
    size_t size = sample->size;
    if (size >= NW_EVENT_SIZE && size < NW_EVENT_SIZE + 8) size = NW_EVENT_SIZE;
    static_cast<EventReader*>(ctx)->deliver(sample->data, size);
  }
  return LIBBPF_PERF_EVENT_CONT;
}

}  // namespace

EventReader::EventReader(const kernel::ProbeSet& probes, event::EventSink& sink, const ReaderOptions& options)
    : sink_(sink), options_(options) {
  if (probes.transport() == kernel::Transport::ringbuf) {
    // A pinned ring adopted from a previous agent starts where that one stopped: its
    // consumer_pos lives in the map, and RingConsumer reads from there.
    mapped_ = std::make_unique<MappedRing>(probes.events_fd());
    ring_.emplace(mapped_->layout());
    return;
  }
  perf_event_attr attr{};
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_BPF_OUTPUT;
  attr.sample_type = PERF_SAMPLE_RAW;
  attr.sample_period = 1;
  // Wake the reader when half a CPU's buffer is waiting, not on every event.
  attr.watermark = 1;
  attr.wakeup_watermark = options.perf_pages_per_cpu * static_cast<uint32_t>(getpagesize()) / 2;
  perf_ = perf_buffer__new_raw(probes.events_fd(), options.perf_pages_per_cpu, &attr, on_perf_record, this, nullptr);
  if (!perf_) throw util::FatalError(std::string("creating the perf buffer reader failed: ") + std::strerror(errno));
}

EventReader::EventReader(RingLayout ring, event::EventSink& sink) : sink_(sink) {
  ring_.emplace(ring);
}

EventReader::EventReader(event::EventSink& sink) : sink_(sink) {}

EventReader::~EventReader() { perf_buffer__free(perf_); }

void EventReader::deliver(const void* data, size_t size) {
  ++records_;
  if (size != sizeof(nw_event)) {
    ++decode_errors_;
    return;
  }
  nw_event& copy = copies_[batched_];
  std::memcpy(&copy, data, sizeof(copy));
  if (!event::EventRecord::valid(&copy, size)) {
    ++decode_errors_;
    return;
  }
  batch_[batched_] = event::EventRecord(&copy);
  if (++batched_ == kBatch) flush();
}

void EventReader::flush() {
  if (batched_ == 0) return;
  sink_.on_records({batch_.data(), batched_});
  batched_ = 0;
}

int EventReader::poll() {
  if (!ring_ && !perf_) return 0;
  uint64_t before = records_;
  int err = 0;
  if (mapped_)
    err = mapped_->wait(options_.drain_interval_ms);
  else if (perf_)
    err = perf_buffer__poll(perf_, options_.drain_interval_ms);
  if (err < 0 && err != -EINTR) throw util::FatalError(std::string("reading events failed: ") + std::strerror(-err));
  drain();
  return static_cast<int>(records_ - before);
}

int EventReader::drain() {
  if (!ring_ && !perf_) {
    flush();
    return 0;
  }
  uint64_t before = records_;
  if (ring_) {
    drain_ring();
  } else {
    int err = perf_buffer__consume(perf_);
    flush();
    if (err < 0 && err != -EINTR) throw util::FatalError(std::string("reading events failed: ") + std::strerror(-err));
  }
  ++drains_;
  return static_cast<int>(records_ - before);
}

void EventReader::drain_ring() {
  // A batch at a time, read in place: the sink has processed a batch before its space goes back
  // to the kernel. Ends at what the ring held when the drain began (a producer as fast as the
  // reader would otherwise keep the drain going, and the reader thread would never publish or
  // answer a listing), or earlier at a record still being written.
  flush();  // anything deliver() left
  const unsigned long until = ring_->produced();
  for (;;) {
    size_t read = 0, good = 0;  // locals: kept in registers through the loop
    event::EventRecord* batch = batch_.data();
    size_t walked = ring_->read(kBatch, [&](const void* data, size_t size) {
      ++read;
      if (event::EventRecord::valid(data, size)) batch[good++] = event::EventRecord(data);
    }, until);
    if (walked == 0) return;
    records_ += read;
    decode_errors_ += read - good;
    batched_ = good;
    flush();
    ring_->release();
  }
}

}  // namespace netwatch::transport
