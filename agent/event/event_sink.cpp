#include "event/event_sink.h"

namespace netwatch::event {

void EventSink::on_records(std::span<const EventRecord> records) {
  Event event;
  for (const EventRecord& r : records) {
    r.decode(event);
    on_event(event);
  }
}

}  // namespace netwatch::event
