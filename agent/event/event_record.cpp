#include "event/event_record.h"

#include <type_traits>

namespace netwatch::event {

static_assert(sizeof(nw_event) == NW_EVENT_SIZE, "event ABI size changed: update NW_EVENT_SIZE");
static_assert(NW_EV_TYPE_COUNT == kEventTypeCount);
static_assert(sizeof(TcpStats) == sizeof(nw_tcp_stats) &&
                  offsetof(TcpStats, srtt_us) == offsetof(nw_tcp_stats, srtt_us) &&
                  offsetof(TcpStats, rttvar_us) == offsetof(nw_tcp_stats, rttvar_us) &&
                  offsetof(TcpStats, snd_cwnd) == offsetof(nw_tcp_stats, snd_cwnd) &&
                  offsetof(TcpStats, total_retrans) == offsetof(nw_tcp_stats, total_retrans) &&
                  offsetof(TcpStats, segs_out) == offsetof(nw_tcp_stats, segs_out) &&
                  offsetof(TcpStats, segs_in) == offsetof(nw_tcp_stats, segs_in) &&
                  offsetof(TcpStats, bytes_sent) == offsetof(nw_tcp_stats, bytes_sent) &&
                  offsetof(TcpStats, bytes_acked) == offsetof(nw_tcp_stats, bytes_acked) &&
                  offsetof(TcpStats, bytes_received) == offsetof(nw_tcp_stats, bytes_received),
              "TcpStats must mirror struct nw_tcp_stats: EventRecord::decode() copies one into the other");
static_assert(std::is_trivially_copyable_v<TcpStats> && std::is_trivially_copyable_v<nw_event>);

namespace {

bool is_v4_mapped(const uint8_t* a) {
  static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, prefix, sizeof(prefix)) == 0;
}

// Any process can name itself anything (prctl(PR_SET_NAME)): keep printable ASCII only, as ps
// does, so no name can inject terminal escapes or break a JSON document. The name ends at its
// first NUL; the last byte is always one.
void decode_comm(const char* raw, std::array<char, 16>& comm) {
  comm = {};
  for (size_t i = 0; i + 1 < comm.size() && raw[i]; ++i) {
    auto b = static_cast<uint8_t>(raw[i]);
    comm[i] = b >= 0x20 && b < 0x7f ? static_cast<char>(b) : '?';
  }
}

void decode_address(uint8_t family, const uint8_t* raw, IpAddress& addr) {
  if (family == AF_INET6 && !is_v4_mapped(raw)) {
    addr.family = 6;
    std::memcpy(addr.bytes.data(), raw, 16);
    return;
  }
  addr.family = 4;
  addr.bytes = {};
  std::memcpy(addr.bytes.data(), family == AF_INET6 ? raw + 12 : raw, 4);
}

}  // namespace

void EventRecord::decode(Event& ev) const {
  const nw_event& r = *raw_;
  ev.type = static_cast<EventType>(r.type);
  ev.direction = static_cast<Direction>(r.direction);
  ev.ts_ns = r.ts_ns;
  ev.cookie = r.cookie;
  ev.cgroup_id = r.cgroup_id;
  ev.netns_ino = r.netns_ino;
  ev.pid = r.pid;
  decode_comm(r.comm, ev.comm);
  decode_address(r.family, r.saddr, ev.saddr);
  decode_address(r.family, r.daddr, ev.daddr);
  ev.state = r.state;
  ev.sport = r.sport;
  ev.dport = r.dport;
  ev.segs = r.segs;
  ev.error = r.error;
  ev.latency_ns = r.latency_ns;
  ev.duration_ns = r.duration_ns;
  std::memcpy(static_cast<void*>(&ev.stats), &r.stats, sizeof(ev.stats));
}

EventRecord EventRecord::encode(const Event& ev, nw_event& r) {
  std::memset(&r, 0, sizeof(r));
  r.ts_ns = ev.ts_ns;
  r.cookie = ev.cookie;
  r.cgroup_id = ev.cgroup_id;
  r.netns_ino = ev.netns_ino;
  r.pid = ev.pid;
  static_assert(sizeof(r.comm) == sizeof(ev.comm));
  std::memcpy(r.comm, ev.comm.data(), sizeof(r.comm));
  r.family = ev.saddr.family == 6 || ev.daddr.family == 6 ? AF_INET6 : AF_INET;
  // An IPv4 end of an IPv6 socket is IPv4-mapped, as the kernel reports it.
  auto address = [&](const IpAddress& a, uint8_t* to) {
    if (r.family == AF_INET6 && a.family == 4) {
      to[10] = to[11] = 0xff;
      std::memcpy(to + 12, a.bytes.data(), 4);
    } else {
      std::memcpy(to, a.bytes.data(), a.family == 6 ? 16 : 4);
    }
  };
  address(ev.saddr, r.saddr);
  address(ev.daddr, r.daddr);
  r.sport = ev.sport;
  r.dport = ev.dport;
  r.state = ev.state;
  r.type = static_cast<uint8_t>(ev.type);
  r.direction = static_cast<uint8_t>(ev.direction);
  r.segs = ev.segs;
  r.error = ev.error;
  r.latency_ns = ev.latency_ns;
  r.duration_ns = ev.duration_ns;
  std::memcpy(&r.stats, &ev.stats, sizeof(r.stats));
  return EventRecord(&r);
}

}  // namespace netwatch::event
