// What `netwatch top` shows, whatever the source: the GET /api/v1/connections document
// (README) parsed into rows, plus per-connection byte rates from two consecutive snapshots.
// Standalone mode builds the same document in-process, so both sources share one parser.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace netwatch::cli::top {

struct TopConnection {
  uint64_t cookie = 0;
  std::string direction;  // outbound, inbound, unknown
  std::string state;      // ESTABLISHED, SYN_SENT, ... as the agent names them
  uint32_t pid = 0;
  std::string comm;
  int family = 4;
  std::string local, remote;
  uint16_t local_port = 0, remote_port = 0;
  double age_s = 0, idle_s = 0;
  uint64_t connect_latency_ns = 0;      // 0: not seen (inbound, or predates netwatch)
  uint32_t srtt_us = 0, rttvar_us = 0;  // 0: no sample yet
  uint64_t retransmits = 0, segs_out = 0;
  double retransmit_ratio = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  std::string namespace_name, pod, container;
  // Bytes per second since the previous snapshot; nullopt until the connection was in two.
  std::optional<double> tx_rate, rx_rate;
};

struct TopFlow {
  std::string direction;
  std::string peer, port;  // "other" once folded by the series budget
  int64_t active = 0;
  uint64_t ok = 0, refused = 0, timeout = 0, reset = 0, error = 0;  // connects by result
  uint64_t retransmits = 0, segments_sent = 0;
  double retransmit_ratio = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  double connect_p50_s = 0, connect_p99_s = 0, rtt_p50_s = 0, rtt_p99_s = 0;  // 0: no samples
  std::string namespace_name, pod, container;
};

struct TopSnapshot {
  uint64_t ts_ns = 0;  // Unix epoch ns when the agent took it
  uint64_t connections_total = 0;
  bool connections_truncated = false;
  uint64_t events_lost = 0;
  int series_budget_stage = 0;
  std::vector<TopConnection> connections;
  std::vector<TopFlow> flows;
};

// A snapshot that is not the documented format. what() names the first bad field, e.g.
// "malformed snapshot: connections[2].srtt_us: expected a number".
class SnapshotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Text that is not JSON at all: SnapshotError("malformed snapshot: not JSON (...)").
nlohmann::json parse_document(const std::string& text);
TopSnapshot parse_snapshot(const nlohmann::json& document);
TopSnapshot parse_snapshot(const std::string& text);  // parse_document, then the above

// Fills current's tx_rate/rx_rate from the growth of each cookie's byte counters since
// previous, over the snapshots' ts_ns difference. Connections new since previous, counters
// that went backwards (re-based after an idle expiry) and a zero interval leave them unknown.
void apply_rates(TopSnapshot& current, const TopSnapshot& previous);

// Keeps rows of one address family (4 or 6); 0 keeps everything. Flows folded to peer
// "other" have no family and are kept.
void keep_family(TopSnapshot& snapshot, int family);

}  // namespace netwatch::cli::top
