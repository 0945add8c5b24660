#include "cli/top/columns.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace netwatch::cli::top {
namespace {

template <class T>
int cmp(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

std::string printf_string(const char* format, double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), format, value);
  return buf;
}

Tone zero_dim(uint64_t n) {
  return n ? Tone::normal : Tone::dim;
}
Tone zero_dim_else_bad(uint64_t n) {
  return n ? Tone::bad : Tone::dim;
}
// A connect of a second or more means at least one SYN was lost (the first SYN timeout is 1s).
Tone connect_tone(double seconds) {
  return seconds <= 0 ? Tone::dim : seconds >= 1.0 ? Tone::bad : Tone::normal;
}
Tone rtt_tone(double seconds) {
  return seconds <= 0 ? Tone::dim : seconds >= 1.0 ? Tone::bad : seconds >= 0.1 ? Tone::warn : Tone::normal;
}
// Above 1% loss TCP throughput collapses; any retransmission at all is worth a look.
Tone ratio_tone(uint64_t retransmits, double ratio) {
  return ratio >= 0.01 ? Tone::bad : retransmits ? Tone::warn : Tone::dim;
}

std::string workload_text(const std::string& ns, const std::string& pod) {
  if (pod.empty()) return ns;
  return ns.empty() ? pod : ns + "/" + pod;
}

std::string direction_short(const std::string& d) {
  if (d == "outbound") return "out";
  if (d == "inbound") return "in";
  return "?";
}

double rate_key(const std::optional<double>& r) {
  return r ? *r : -1.0;
}

using C = TopConnection;
using F = TopFlow;

}  // namespace

// The thresholds sit where printf's rounding would add a digit (9.996 -> "10.00"), so no cell
// outgrows its column.
std::string format_duration_us(double us) {
  if (us <= 0) return "-";
  if (us < 999.5) return printf_string("%.0fus", us);
  double ms = us / 1000;
  if (ms < 9.995) return printf_string("%.2fms", ms);
  if (ms < 99.95) return printf_string("%.1fms", ms);
  if (ms < 999.5) return printf_string("%.0fms", ms);
  double s = ms / 1000;
  if (s < 9.995) return printf_string("%.2fs", s);
  if (s < 99.95) return printf_string("%.1fs", s);
  return printf_string("%.0fs", s);
}

std::string format_seconds(double s) {
  return format_duration_us(s * 1e6);
}

std::string format_age(double s) {
  char buf[32];
  auto n = static_cast<uint64_t>(std::max(0.0, s));
  if (n < 60)
    std::snprintf(buf, sizeof(buf), "%llus", static_cast<unsigned long long>(n));
  else if (n < 3600)
    std::snprintf(buf, sizeof(buf), "%llum%02llus", static_cast<unsigned long long>(n / 60),
                  static_cast<unsigned long long>(n % 60));
  else if (n < 86400)
    std::snprintf(buf, sizeof(buf), "%lluh%02llum", static_cast<unsigned long long>(n / 3600),
                  static_cast<unsigned long long>(n % 3600 / 60));
  else
    std::snprintf(buf, sizeof(buf), "%llud%02lluh", static_cast<unsigned long long>(n / 86400),
                  static_cast<unsigned long long>(n % 86400 / 3600));
  return buf;
}

std::string format_count(uint64_t n) {
  if (n < 10'000'000) return std::to_string(n);
  if (n < 10'000'000'000ULL) return printf_string("%.1fM", double(n) / 1e6);
  return printf_string("%.1fG", double(n) / 1e9);
}

std::string format_percent(double ratio) {
  double p = ratio * 100;
  if (p <= 0) return "0";
  if (p < 0.005) return "<0.01";
  if (p < 9.995) return printf_string("%.2f", p);
  if (p < 99.95) return printf_string("%.1f", p);
  return "100";
}

std::string format_rate(std::optional<double> r) {
  if (!r) return "-";
  double v = *r;
  if (v < 999.5) return printf_string("%.0f", v);
  static constexpr const char* units[] = {"K", "M", "G", "T"};
  for (const char* unit : units) {
    v /= 1024;
    if (v < 9.95) return printf_string("%.1f", v) + unit;
    if (v < 999.5 || unit == units[3]) return printf_string("%.0f", v) + unit;
  }
  return "-";
}

std::string format_state(std::string_view s) {
  // ss(8)'s names: what an SRE reads every day.
  if (s == "ESTABLISHED") return "ESTAB";
  if (s == "SYN_SENT") return "SYN-SENT";
  if (s == "SYN_RECV" || s == "NEW_SYN_RECV") return "SYN-RECV";
  if (s == "FIN_WAIT1") return "FIN-WAIT-1";
  if (s == "FIN_WAIT2") return "FIN-WAIT-2";
  if (s == "TIME_WAIT") return "TIME-WAIT";
  if (s == "CLOSE") return "CLOSED";
  if (s == "CLOSE_WAIT") return "CLOSE-WAIT";
  if (s == "LAST_ACK") return "LAST-ACK";
  if (s == "BOUND_INACTIVE") return "BOUND";
  return std::string(s);
}

std::string format_endpoint(const std::string& address, uint16_t port) {
  bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

template <class Row>
std::optional<size_t> find_column(const std::vector<Column<Row>>& columns, std::string_view name) {
  auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (size_t i = 0; i < columns.size(); ++i)
    if (same(columns[i].key, name) || same(columns[i].title, name)) return i;
  return std::nullopt;
}

template std::optional<size_t> find_column(const std::vector<ConnectionColumn>&, std::string_view);
template std::optional<size_t> find_column(const std::vector<FlowColumn>&, std::string_view);

// clang-format off
const std::vector<ConnectionColumn>& connection_columns() {
  static const std::vector<ConnectionColumn> columns = {
    {"pid", "PID", 7, 7, 60, Align::right, false, false,
     "process that called connect(); - for accepted connections (set in softirq)",
     [](const C& c) { return c.pid ? std::to_string(c.pid) : std::string("-"); },
     [](const C& a, const C& b) { return cmp(a.pid, b.pid); }, nullptr},
    {"comm", "COMM", 15, 10, 70, Align::left, false, false,
     "its command name (15 characters, as the kernel keeps it)",
     [](const C& c) { return c.comm.empty() ? std::string("-") : c.comm; },
     [](const C& a, const C& b) { return cmp(a.comm, b.comm); }, nullptr},
    {"dir", "DIR", 3, 3, 15, Align::left, false, false,
     "out: this host connected; in: this host accepted; ?: predates netwatch",
     [](const C& c) { return direction_short(c.direction); },
     [](const C& a, const C& b) { return cmp(a.direction, b.direction); }, nullptr},
    {"local", "LOCAL", 21, 21, 30, Align::left, false, false,
     "local address:port",
     [](const C& c) { return format_endpoint(c.local, c.local_port); },
     [](const C& a, const C& b) { int r = cmp(a.local, b.local); return r ? r : cmp(a.local_port, b.local_port); }, nullptr, true},
    {"remote", "REMOTE", 21, 21, 100, Align::left, false, false,
     "remote address:port",
     [](const C& c) { return format_endpoint(c.remote, c.remote_port); },
     [](const C& a, const C& b) { int r = cmp(a.remote, b.remote); return r ? r : cmp(a.remote_port, b.remote_port); }, nullptr, true},
    {"state", "STATE", 10, 10, 40, Align::left, false, false,
     "TCP state at the last event, as ss(8) names it",
     [](const C& c) { return format_state(c.state); },
     [](const C& a, const C& b) { return cmp(a.state, b.state); },
     [](const C& c) { return c.state == "ESTABLISHED" ? Tone::normal : Tone::warn; }},
    {"age", "AGE", 6, 6, 35, Align::right, true, false,
     "since the connection started (or netwatch first saw it)",
     [](const C& c) { return format_age(c.age_s); },
     [](const C& a, const C& b) { return cmp(a.age_s, b.age_s); }, nullptr},
    {"rtt", "RTT", 6, 6, 90, Align::right, true, false,
     "smoothed round-trip time (tcpi_rtt); yellow from 100ms, red from 1s; - until sampled",
     [](const C& c) { return format_duration_us(c.srtt_us); },
     [](const C& a, const C& b) { return cmp(a.srtt_us, b.srtt_us); },
     [](const C& c) { return rtt_tone(c.srtt_us / 1e6); }},
    {"rttvar", "RTTVAR", 6, 6, 10, Align::right, true, false,
     "RTT variation (tcpi_rttvar): jitter",
     [](const C& c) { return format_duration_us(c.rttvar_us); },
     [](const C& a, const C& b) { return cmp(a.rttvar_us, b.rttvar_us); },
     [](const C& c) { return c.rttvar_us ? Tone::normal : Tone::dim; }},
    {"retrans", "RETRANS", 7, 7, 80, Align::right, true, false,
     "retransmitted segments since netwatch saw the connection start",
     [](const C& c) { return format_count(c.retransmits); },
     [](const C& a, const C& b) { return cmp(a.retransmits, b.retransmits); },
     [](const C& c) { return c.retransmits ? Tone::warn : Tone::dim; }},
    {"retrans%", "RETR%", 5, 5, 85, Align::right, true, false,
     "retransmitted / sent segments, in percent; red from 1%",
     [](const C& c) { return format_percent(c.retransmit_ratio); },
     [](const C& a, const C& b) { return cmp(a.retransmit_ratio, b.retransmit_ratio); },
     [](const C& c) { return ratio_tone(c.retransmits, c.retransmit_ratio); }},
    {"connect", "CONNECT", 7, 7, 20, Align::right, true, false,
     "handshake time, SYN to established; red from 1s (a SYN was lost)",
     [](const C& c) { return format_duration_us(c.connect_latency_ns / 1e3); },
     [](const C& a, const C& b) { return cmp(a.connect_latency_ns, b.connect_latency_ns); },
     [](const C& c) { return connect_tone(c.connect_latency_ns / 1e9); }},
    {"tx", "TX/s", 5, 5, 50, Align::right, true, false,
     "bytes sent per second between the last two refreshes (K, M, G: 1024)",
     [](const C& c) { return format_rate(c.tx_rate); },
     [](const C& a, const C& b) { return cmp(rate_key(a.tx_rate), rate_key(b.tx_rate)); },
     [](const C& c) { return c.tx_rate && *c.tx_rate > 0 ? Tone::normal : Tone::dim; }},
    {"rx", "RX/s", 5, 5, 52, Align::right, true, false,
     "bytes received per second between the last two refreshes",
     [](const C& c) { return format_rate(c.rx_rate); },
     [](const C& a, const C& b) { return cmp(rate_key(a.rx_rate), rate_key(b.rx_rate)); },
     [](const C& c) { return c.rx_rate && *c.rx_rate > 0 ? Tone::normal : Tone::dim; }},
    {"pod", "NAMESPACE/POD", 30, 20, 55, Align::left, false, true,
     "Kubernetes namespace/pod of the socket's cgroup; hidden when no row has one",
     [](const C& c) { return workload_text(c.namespace_name, c.pod); },
     [](const C& a, const C& b) { return cmp(workload_text(a.namespace_name, a.pod), workload_text(b.namespace_name, b.pod)); }, nullptr},
  };
  return columns;
}

const std::vector<FlowColumn>& flow_columns() {
  static const std::vector<FlowColumn> columns = {
    {"dir", "DIR", 3, 3, 95, Align::left, false, false,
     "out: connections this host made; in: connections it accepted",
     [](const F& f) { return direction_short(f.direction); },
     [](const F& a, const F& b) { return cmp(a.direction, b.direction); }, nullptr},
    {"peer", "PEER:PORT", 21, 18, 100, Align::left, false, false,
     "remote address and service port (remote for out, local for in); other: folded by the series budget",
     [](const F& f) { return f.peer.find(':') != std::string::npos ? "[" + f.peer + "]:" + f.port : f.peer + ":" + f.port; },
     [](const F& a, const F& b) { int r = cmp(a.peer, b.peer); return r ? r : cmp(a.port, b.port); }, nullptr, true},
    {"active", "ACTIVE", 6, 6, 80, Align::right, true, false,
     "live connections of the flow",
     [](const F& f) { return std::to_string(f.active); },
     [](const F& a, const F& b) { return cmp(a.active, b.active); },
     [](const F& f) { return f.active ? Tone::normal : Tone::dim; }},
    {"ok", "OK", 5, 5, 45, Align::right, true, false,
     "handshakes completed (inbound: accepted)",
     [](const F& f) { return format_count(f.ok); },
     [](const F& a, const F& b) { return cmp(a.ok, b.ok); },
     [](const F& f) { return zero_dim(f.ok); }},
    {"refused", "REFUSED", 7, 7, 86, Align::right, true, false,
     "connects answered with a reset (ECONNREFUSED): nothing listens",
     [](const F& f) { return format_count(f.refused); },
     [](const F& a, const F& b) { return cmp(a.refused, b.refused); },
     [](const F& f) { return zero_dim_else_bad(f.refused); }},
    {"timeout", "TIMEOUT", 7, 7, 85, Align::right, true, false,
     "connects that got no answer (ETIMEDOUT): a firewall, or the peer is gone",
     [](const F& f) { return format_count(f.timeout); },
     [](const F& a, const F& b) { return cmp(a.timeout, b.timeout); },
     [](const F& f) { return zero_dim_else_bad(f.timeout); }},
    {"reset", "RESET", 5, 5, 78, Align::right, true, false,
     "handshakes reset midway (ECONNRESET)",
     [](const F& f) { return format_count(f.reset); },
     [](const F& a, const F& b) { return cmp(a.reset, b.reset); },
     [](const F& f) { return zero_dim_else_bad(f.reset); }},
    {"error", "ERROR", 5, 5, 76, Align::right, true, false,
     "connects failed otherwise (another errno, or closed by the application before established)",
     [](const F& f) { return format_count(f.error); },
     [](const F& a, const F& b) { return cmp(a.error, b.error); },
     [](const F& f) { return zero_dim_else_bad(f.error); }},
    {"connect-p50", "CONNp50", 7, 7, 50, Align::right, true, false,
     "median handshake time (from histogram buckets, like histogram_quantile)",
     [](const F& f) { return format_seconds(f.connect_p50_s); },
     [](const F& a, const F& b) { return cmp(a.connect_p50_s, b.connect_p50_s); },
     [](const F& f) { return connect_tone(f.connect_p50_s); }},
    {"connect-p99", "CONNp99", 7, 7, 75, Align::right, true, false,
     "99th percentile handshake time; red from 1s (SYNs were lost)",
     [](const F& f) { return format_seconds(f.connect_p99_s); },
     [](const F& a, const F& b) { return cmp(a.connect_p99_s, b.connect_p99_s); },
     [](const F& f) { return connect_tone(f.connect_p99_s); }},
    {"rtt-p50", "RTTp50", 6, 6, 60, Align::right, true, false,
     "median smoothed RTT of the flow's samples",
     [](const F& f) { return format_seconds(f.rtt_p50_s); },
     [](const F& a, const F& b) { return cmp(a.rtt_p50_s, b.rtt_p50_s); },
     [](const F& f) { return rtt_tone(f.rtt_p50_s); }},
    {"rtt-p99", "RTTp99", 6, 6, 88, Align::right, true, false,
     "99th percentile smoothed RTT; yellow from 100ms, red from 1s",
     [](const F& f) { return format_seconds(f.rtt_p99_s); },
     [](const F& a, const F& b) { return cmp(a.rtt_p99_s, b.rtt_p99_s); },
     [](const F& f) { return rtt_tone(f.rtt_p99_s); }},
    {"retrans", "RETRANS", 7, 7, 40, Align::right, true, false,
     "retransmitted segments",
     [](const F& f) { return format_count(f.retransmits); },
     [](const F& a, const F& b) { return cmp(a.retransmits, b.retransmits); },
     [](const F& f) { return f.retransmits ? Tone::warn : Tone::dim; }},
    {"retrans%", "RETR%", 5, 5, 90, Align::right, true, false,
     "retransmitted / sent segments, in percent; red from 1%",
     [](const F& f) { return format_percent(f.retransmit_ratio); },
     [](const F& a, const F& b) { return cmp(a.retransmit_ratio, b.retransmit_ratio); },
     [](const F& f) { return ratio_tone(f.retransmits, f.retransmit_ratio); }},
    {"pod", "NAMESPACE/POD", 30, 20, 65, Align::left, false, true,
     "Kubernetes namespace/pod; hidden when no row has one",
     [](const F& f) { return workload_text(f.namespace_name, f.pod); },
     [](const F& a, const F& b) { return cmp(workload_text(a.namespace_name, a.pod), workload_text(b.namespace_name, b.pod)); }, nullptr},
  };
  return columns;
}
// clang-format on

}  // namespace netwatch::cli::top
