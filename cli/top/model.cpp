#include "cli/top/model.h"

#include <limits>
#include <unordered_map>

namespace netwatch::cli::top {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw SnapshotError("malformed snapshot: " + where + ": " + what);
}

// Reads one field of an object with the path of the field in every error message.
class Fields {
 public:
  Fields(const json& object, std::string where) : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) fail(where_.empty() ? "document" : where_, "expected an object");
  }

  const json& at(const char* key) const {
    auto it = object_.find(key);
    if (it == object_.end()) fail(path(key), "missing");
    return *it;
  }
  bool has(const char* key) const { return object_.contains(key); }

  uint64_t count(const char* key, uint64_t max = std::numeric_limits<uint64_t>::max()) const {
    const json& v = at(key);
    if (v.is_number_unsigned()) {
      uint64_t n = v.get<uint64_t>();
      if (n > max) fail(path(key), "out of range (" + std::to_string(n) + ")");
      return n;
    }
    if (v.is_number_integer()) {  // a signed int that holds a non-negative value is fine
      if (v.get<int64_t>() < 0) fail(path(key), "must not be negative");
      if (uint64_t(v.get<int64_t>()) > max) fail(path(key), "out of range (" + std::to_string(v.get<int64_t>()) + ")");
      return uint64_t(v.get<int64_t>());
    }
    fail(path(key), "expected a non-negative integer, got " + type_of(v));
  }
  int64_t integer(const char* key) const {
    const json& v = at(key);
    if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX)) return v.get<int64_t>();
    fail(path(key), "expected an integer, got " + type_of(v));
  }
  double number(const char* key) const {
    const json& v = at(key);
    if (!v.is_number()) fail(path(key), "expected a number, got " + type_of(v));
    return v.get<double>();
  }
  bool boolean(const char* key) const {
    const json& v = at(key);
    if (!v.is_boolean()) fail(path(key), "expected true or false, got " + type_of(v));
    return v.get<bool>();
  }
  std::string text(const char* key) const {
    const json& v = at(key);
    if (!v.is_string()) fail(path(key), "expected a string, got " + type_of(v));
    return v.get<std::string>();
  }
  // Workload labels are absent on older agents: empty then.
  std::string optional_text(const char* key) const { return has(key) ? text(key) : std::string(); }
  const json& array(const char* key) const {
    const json& v = at(key);
    if (!v.is_array()) fail(path(key), "expected an array, got " + type_of(v));
    return v;
  }
  std::string path(const char* key) const { return where_.empty() ? key : where_ + "." + key; }

 private:
  static std::string type_of(const json& v) {
    if (v.is_number_float()) return "a fraction";
    if (v.is_number_integer()) return "a negative number";
    return v.type_name();
  }

  const json& object_;
  std::string where_;
};

TopConnection parse_connection(const json& j, const std::string& where) {
  Fields f(j, where);
  TopConnection c;
  c.cookie = f.count("cookie");
  c.direction = f.text("direction");
  c.state = f.text("state");
  c.pid = static_cast<uint32_t>(f.count("pid", UINT32_MAX));
  c.comm = f.text("comm");
  c.family = static_cast<int>(f.count("family", 6));
  if (c.family != 4 && c.family != 6) fail(f.path("family"), "expected 4 or 6");
  c.local = f.text("local");
  c.local_port = static_cast<uint16_t>(f.count("local_port", 65535));
  c.remote = f.text("remote");
  c.remote_port = static_cast<uint16_t>(f.count("remote_port", 65535));
  c.age_s = f.number("age_s");
  c.idle_s = f.number("idle_s");
  c.connect_latency_ns = f.count("connect_latency_ns");
  c.srtt_us = static_cast<uint32_t>(f.count("srtt_us", UINT32_MAX));
  c.rttvar_us = static_cast<uint32_t>(f.count("rttvar_us", UINT32_MAX));
  c.retransmits = f.count("retransmits");
  c.segs_out = f.count("segs_out");
  c.retransmit_ratio = f.number("retransmit_ratio");
  c.bytes_sent = f.count("bytes_sent");
  c.bytes_received = f.count("bytes_received");
  c.namespace_name = f.optional_text("namespace");
  c.pod = f.optional_text("pod");
  c.container = f.optional_text("container");
  return c;
}

TopFlow parse_flow(const json& j, const std::string& where) {
  Fields f(j, where);
  TopFlow fl;
  fl.direction = f.text("direction");
  fl.peer = f.text("peer");
  fl.port = f.text("port");
  fl.active = f.integer("active");
  Fields connects(f.at("connects"), f.path("connects"));
  fl.ok = connects.count("ok");
  fl.refused = connects.count("refused");
  fl.timeout = connects.count("timeout");
  fl.reset = connects.count("reset");
  fl.error = connects.count("error");
  // Its own result since the agent named it; top shows it with the other failures (an older
  // agent's reply has no such key).
  if (f.at("connects").contains("closed_before_established")) fl.error += connects.count("closed_before_established");
  fl.retransmits = f.count("retransmits");
  fl.segments_sent = f.count("segments_sent");
  fl.retransmit_ratio = f.number("retransmit_ratio");
  fl.bytes_sent = f.count("bytes_sent");
  fl.bytes_received = f.count("bytes_received");
  fl.connect_p50_s = f.number("connect_latency_p50_s");
  fl.connect_p99_s = f.number("connect_latency_p99_s");
  fl.rtt_p50_s = f.number("rtt_p50_s");
  fl.rtt_p99_s = f.number("rtt_p99_s");
  fl.namespace_name = f.optional_text("namespace");
  fl.pod = f.optional_text("pod");
  fl.container = f.optional_text("container");
  return fl;
}

int family_of(const std::string& address) {
  if (address.find(':') != std::string::npos) return 6;
  if (address.find('.') != std::string::npos) return 4;
  return 0;  // "other"
}

}  // namespace

TopSnapshot parse_snapshot(const json& document) {
  Fields f(document, "");
  TopSnapshot s;
  s.ts_ns = f.count("ts_ns");
  s.connections_total = f.count("connections_total");
  s.connections_truncated = f.boolean("connections_truncated");
  s.events_lost = f.count("events_lost");
  s.series_budget_stage = static_cast<int>(f.count("series_budget_stage", 3));
  const json& connections = f.array("connections");
  s.connections.reserve(connections.size());
  for (size_t i = 0; i < connections.size(); ++i)
    s.connections.push_back(parse_connection(connections[i], "connections[" + std::to_string(i) + "]"));
  const json& flows = f.array("flows");
  s.flows.reserve(flows.size());
  for (size_t i = 0; i < flows.size(); ++i) s.flows.push_back(parse_flow(flows[i], "flows[" + std::to_string(i) + "]"));
  return s;
}

json parse_document(const std::string& text) {
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    std::string start = text.substr(0, 40);
    for (char& ch : start)
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = ' ';
    throw SnapshotError("malformed snapshot: not JSON (it starts with \"" + start + "\")");
  }
  return document;
}

TopSnapshot parse_snapshot(const std::string& text) {
  return parse_snapshot(parse_document(text));
}

void apply_rates(TopSnapshot& current, const TopSnapshot& previous) {
  if (current.ts_ns <= previous.ts_ns) return;
  double seconds = double(current.ts_ns - previous.ts_ns) / 1e9;
  std::unordered_map<uint64_t, const TopConnection*> before;
  before.reserve(previous.connections.size());
  for (const TopConnection& c : previous.connections) before.emplace(c.cookie, &c);
  for (TopConnection& c : current.connections) {
    auto it = before.find(c.cookie);
    if (it == before.end()) continue;
    const TopConnection& p = *it->second;
    if (c.bytes_sent >= p.bytes_sent) c.tx_rate = double(c.bytes_sent - p.bytes_sent) / seconds;
    if (c.bytes_received >= p.bytes_received) c.rx_rate = double(c.bytes_received - p.bytes_received) / seconds;
  }
}

void keep_family(TopSnapshot& s, int family) {
  if (family == 0) return;
  std::erase_if(s.connections, [&](const TopConnection& c) { return c.family != family; });
  std::erase_if(s.flows, [&](const TopFlow& f) {
    int fam = family_of(f.peer);
    return fam != 0 && fam != family;
  });
}

}  // namespace netwatch::cli::top
