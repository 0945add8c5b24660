// The query string of GET /api/v1/connections as a client can send it: split and percent-decoded
// by cpp-httplib's query parser (a stand-in: the server itself takes libmicrohttpd's GET
// arguments), then read by the agent's parse_connections_query(). Beyond not crashing, what is
// accepted must be within the bounds the README promises: a limit from 1 to 100000, and exactly
// one limit parameter or none.
#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "serve/http_server.h"

using namespace netwatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string query(reinterpret_cast<const char*>(data), size);
  httplib::Params params;
  httplib::detail::parse_query_text(query, params);
  auto parsed = serve::parse_connections_query(params);
  size_t limits = params.count("limit");
  if (parsed) {
    if (parsed->limit < 1 || parsed->limit > serve::kMaxConnectionsLimit) __builtin_trap();
    if (limits > 1) __builtin_trap();
    if (limits == 0 && parsed->limit != serve::kDefaultConnectionsLimit) __builtin_trap();
    // The value accepted is plain decimal digits, nothing looser ("+5", " 5", "5x", "1e3").
    if (limits == 1) {
      const std::string& value = params.find("limit")->second;
      if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) __builtin_trap();
      if (std::stoul(value) != parsed->limit) __builtin_trap();
    }
  } else if (limits == 0) {
    __builtin_trap();  // only limit is ever refused
  }
  return 0;
}
