// One kernel record (struct nw_event, bpf/netwatch.h) as the event path carries it: a checked
// view of the record where it lies (in the ring buffer, or a copy the reader made), with typed
// reads of the fields that change on every record. The connection's identity (addresses, ports,
// process, cgroup) is read only by decode(), the one decoder: the aggregator calls it once per
// connection, trace and top once per record. An RTT sample of a known connection needs none of
// it, and is most of what a busy node sends.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstring>

#include "event/event.h"

extern "C" {
#include <linux/types.h>

#include "netwatch.h"
}

namespace netwatch::event {

class EventRecord {
 public:
  // Whether data is a well-formed record: everything decode() relies on (size, type, family,
  // direction). data must be 8-byte aligned, as the ring buffer's records are.
  static bool valid(const void* data, size_t size) {
    if (size != sizeof(nw_event)) return false;
    const auto& r = *static_cast<const nw_event*>(data);
    return r.type >= NW_EV_CONNECT && r.type < NW_EV_TYPE_COUNT && (r.family == AF_INET || r.family == AF_INET6) &&
           r.direction <= NW_DIR_INBOUND;
  }
  // A view of a record valid() accepted; it must outlive the view.
  explicit EventRecord(const void* valid_data) : raw_(static_cast<const nw_event*>(valid_data)) {}
  EventRecord() = default;
  // The record the kernel would have sent for a decoded event, written into storage (which the
  // view reads): decode() gives the event back, with its name made printable. For sinks and
  // tests that start from an Event.
  static EventRecord encode(const Event& event, nw_event& storage);

  EventType type() const { return static_cast<EventType>(raw_->type); }
  uint64_t cookie() const { return raw_->cookie; }
  uint64_t ts_ns() const { return raw_->ts_ns; }
  uint8_t state() const { return raw_->state; }
  uint32_t segs() const { return raw_->segs; }
  int32_t error() const { return raw_->error; }
  uint64_t latency_ns() const { return raw_->latency_ns; }
  const nw_tcp_stats& stats() const { return raw_->stats; }

  // Every field into out (every field of out is written): IPv4-mapped IPv6 addresses as IPv4,
  // the process name with anything but printable ASCII replaced.
  void decode(Event& out) const;

 private:
  const nw_event* raw_ = nullptr;
};

}  // namespace netwatch::event
