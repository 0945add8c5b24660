// GET /api/v1/connections: live connections and flows as JSON, the data `netwatch top
// --agent URL` shows. Documented in the README.
#pragma once

#include <nlohmann/json.hpp>

#include "agent/snapshot.h"

namespace netwatch {

// At most connection_limit connections (the most recently active first) and all flows.
nlohmann::json snapshot_to_json(const Snapshot& snapshot, size_t connection_limit);

}  // namespace netwatch
