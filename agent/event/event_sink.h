// Where decoded kernel events go: the aggregator implements it, the event reader feeds it.
#pragma once

#include <span>

#include "event/event.h"
#include "event/event_record.h"

namespace netwatch::event {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const Event& event) = 0;
  // Records in order, a batch at a time, checked but not decoded; valid only during the call
  // (they may lie in the ring buffer, whose space goes back to the kernel afterwards). The
  // default decodes each in full for on_event(). A sink may instead read only the fields it
  // needs from each record, and start loading the state of every record in the batch before
  // applying any (memory-level parallelism), which on_event one by one cannot.
  virtual void on_records(std::span<const EventRecord> records);
};

}  // namespace netwatch::event
