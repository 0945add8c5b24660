#include "cli/event_format.h"

#include <cstdio>
#include <ctime>

namespace netwatch::cli {

std::string endpoint(const event::IpAddress& address, uint16_t port) {
  std::string host = address.to_string();
  if (address.family == 6) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

std::string human_duration(uint64_t ns) {
  char buf[32];
  if (ns < 1'000'000) std::snprintf(buf, sizeof(buf), "%luus", static_cast<unsigned long>(ns / 1000));
  else if (ns < 1'000'000'000) std::snprintf(buf, sizeof(buf), "%.1fms", ns / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.2fs", ns / 1e9);
  return buf;
}

namespace {

// The socket's cumulative counters, as rtt samples and close summaries both report them.
void put_counters(nlohmann::json& j, const event::TcpStats& s) {
  j["srtt_us"] = s.srtt_us;
  j["rttvar_us"] = s.rttvar_us;
  j["segs_out"] = s.segs_out;
  j["total_retrans"] = s.total_retrans;
  j["bytes_sent"] = s.bytes_sent;
  j["bytes_acked"] = s.bytes_acked;
  j["bytes_received"] = s.bytes_received;
}

}  // namespace

nlohmann::json event_to_json(const event::Event& e, const util::WallClock& clock) {
  nlohmann::json j = {
      {"type", event::event_type_name(e.type)},
      {"ts_ns", clock.to_unix_ns(e.ts_ns)},
      {"family", e.saddr.family},
      {"saddr", e.saddr.to_string()},
      {"sport", e.sport},
      {"daddr", e.daddr.to_string()},
      {"dport", e.dport},
      {"direction", event::direction_name(e.direction)},
      {"pid", e.pid},
      {"comm", std::string(e.comm_view())},
      {"cookie", e.cookie},
      {"cgroup_id", e.cgroup_id},
      {"netns", e.netns_ino},
  };
  const event::TcpStats& s = e.stats;
  switch (e.type) {
    case event::EventType::connect:
      j["latency_ns"] = e.latency_ns;
      break;
    case event::EventType::accept:
      break;
    case event::EventType::connect_failed:
      j["error"] = event::connect_failure_name(e.error);
      j["latency_ns"] = e.latency_ns;
      j["segs_out"] = s.segs_out;  // the SYNs sent, retransmissions included
      j["total_retrans"] = s.total_retrans;
      break;
    case event::EventType::retransmit:
      j["segs"] = e.segs;
      j["total_retrans"] = s.total_retrans;
      break;
    case event::EventType::rtt:
      put_counters(j, s);
      j["snd_cwnd"] = s.snd_cwnd;
      break;
    case event::EventType::close:
      put_counters(j, s);
      j["duration_ns"] = e.duration_ns;
      j["segs_in"] = s.segs_in;
      break;
  }
  return j;
}

std::string text_header() {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%-12s %-14s %7s %-15s %-47s %-47s %s", "TIME", "TYPE", "PID", "COMM", "LOCAL",
                "REMOTE", "DETAIL");
  return buf;
}

std::string event_to_text(const event::Event& e, const util::WallClock& clock) {
  uint64_t unix_ns = clock.to_unix_ns(e.ts_ns);
  time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm local{};
  localtime_r(&secs, &local);
  char when[16];
  std::snprintf(when, sizeof(when), "%02d:%02d:%02d.%03u", local.tm_hour, local.tm_min, local.tm_sec,
                static_cast<unsigned>(unix_ns % 1'000'000'000 / 1'000'000));

  std::string detail;
  const event::TcpStats& s = e.stats;
  switch (e.type) {
    case event::EventType::connect:
      detail = "latency=" + human_duration(e.latency_ns);
      break;
    case event::EventType::accept:
      break;
    case event::EventType::connect_failed:
      detail = "error=" + event::connect_failure_name(e.error) + " after=" + human_duration(e.latency_ns) +
               " retrans=" + std::to_string(s.total_retrans) + "/" + std::to_string(s.segs_out);
      break;
    case event::EventType::retransmit:
      detail = "segs=" + std::to_string(e.segs) + " total=" + std::to_string(s.total_retrans);
      break;
    case event::EventType::rtt:
      detail = "srtt=" + std::to_string(s.srtt_us) + "us rttvar=" + std::to_string(s.rttvar_us) +
               "us cwnd=" + std::to_string(s.snd_cwnd) + " retrans=" + std::to_string(s.total_retrans) + "/" +
               std::to_string(s.segs_out);
      break;
    case event::EventType::close:
      detail = "duration=" + human_duration(e.duration_ns) + " tx=" + std::to_string(s.bytes_sent) +
               "B rx=" + std::to_string(s.bytes_received) + "B retrans=" + std::to_string(s.total_retrans) + "/" +
               std::to_string(s.segs_out) + " srtt=" + std::to_string(s.srtt_us) + "us";
      break;
  }
  std::string pid = e.pid ? std::to_string(e.pid) : "-";
  std::string comm = e.comm[0] ? std::string(e.comm_view()) : "-";
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-12s %-14s %7s %-15s %-47s %-47s ", when,
                std::string(event::event_type_name(e.type)).c_str(), pid.c_str(), comm.c_str(),
                endpoint(e.saddr, e.sport).c_str(), endpoint(e.daddr, e.dport).c_str());
  return buf + detail;
}

}  // namespace netwatch::cli
