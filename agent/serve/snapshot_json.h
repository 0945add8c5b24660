// GET /api/v1/connections: live connections and flows as JSON, the data `netwatch top
// --agent URL` shows. Documented in the README.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "aggregate/snapshot.h"

namespace netwatch::serve {

// At most connection_limit connections (the most recently active first) and all flows.
nlohmann::json snapshot_to_json(const aggregate::Snapshot& snapshot, size_t connection_limit);
// The same document, dumped as the HTTP handler serves it (invalid UTF-8 replaced), but built one
// connection at a time: as one JSON value, every connection's tree of nodes would be held at once
// before the dump, several times the text's size; here only the text and one connection's value
// exist at once.
std::string snapshot_to_json_text(const aggregate::Snapshot& snapshot, size_t connection_limit);

}  // namespace netwatch::serve
