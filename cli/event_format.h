// How `netwatch trace` prints one event: a JSON object (the documented schema) or a text line.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "event/event.h"

namespace netwatch::cli {

// ts_ns is Unix-epoch nanoseconds: the kernel's monotonic stamp moved by clock.
nlohmann::json event_to_json(const event::Event& event, const util::WallClock& clock);
std::string event_to_text(const event::Event& event, const util::WallClock& clock);
std::string text_header();

// "192.0.2.1:80" or "[2001:db8::1]:443".
std::string endpoint(const event::IpAddress& address, uint16_t port);
// "950us", "12.3ms", "1.20s".
std::string human_duration(uint64_t ns);

}  // namespace netwatch::cli
