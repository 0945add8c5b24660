// The peers netwatch's probes are measured against: what someone would run with bpftrace to get
// the same answers. Each script runs as its own bpftrace process, so its programs can be told
// apart from the other's by the process holding them (two programs on one tracepoint share a name).
#pragma once

namespace netwatch::bench {

struct BpftracePeer {
  const char* label;        // the "source" column
  const char* description;  // for the report
  const char* script;
};

// In-kernel aggregates only, nothing sent to userspace until exit: the cheapest useful bpftrace.
// tcp_probe's saddr/daddr are sockaddr byte arrays, which bpftrace 0.17 (Debian 12) refuses as map
// keys ("context cannot be used as a map key"); buf() copies them into the key. The connect script
// is tcpconnlat's idea: stamp SYN_SENT, histogram SYN_SENT -> ESTABLISHED.
inline constexpr BpftracePeer kAggregatePeer = {
    "bpftrace",
    "one-liners keeping aggregates: per-flow srtt histogram, connect-latency histogram, per-flow retransmit count",
    R"(
tracepoint:tcp:tcp_probe {
  @srtt[buf(args->saddr, 28), buf(args->daddr, 28), args->sport, args->dport] = hist(args->srtt);
}
tracepoint:sock:inet_sock_set_state /args->protocol == 6/ {
  if (args->newstate == 2) { @start[args->skaddr] = nsecs; }
  else if (args->oldstate == 2) {
    if (args->newstate == 1 && @start[args->skaddr]) { @connect_ns = hist(nsecs - @start[args->skaddr]); }
    delete(@start[args->skaddr]);
  }
}
tracepoint:tcp:tcp_retransmit_skb {
  @retrans[buf(args->saddr, 28), buf(args->daddr, 28), args->sport, args->dport] = count();
}
)"};

// bpftrace's own tools doing netwatch's connect and retransmit jobs, one line per closed connection
// (tcplife.bt) and per retransmission (tcpretrans.bt). Debian ships them in /usr/sbin on kprobes,
// which many kernels (this one) lack; this is the same logic on the stable tracepoints.
inline constexpr BpftracePeer kToolPeer = {
    "bpftrace-tool",
    "tcplife.bt and tcpretrans.bt (bpftrace tools) ported to tracepoints: a line per closed connection and per "
    "retransmission",
    R"(
BEGIN {
  @tcp_states[1] = "ESTABLISHED"; @tcp_states[2] = "SYN_SENT"; @tcp_states[3] = "SYN_RECV";
  @tcp_states[4] = "FIN_WAIT1"; @tcp_states[5] = "FIN_WAIT2"; @tcp_states[6] = "TIME_WAIT";
  @tcp_states[7] = "CLOSE"; @tcp_states[8] = "CLOSE_WAIT"; @tcp_states[9] = "LAST_ACK";
  @tcp_states[10] = "LISTEN"; @tcp_states[11] = "CLOSING"; @tcp_states[12] = "NEW_SYN_RECV";
}
tracepoint:sock:inet_sock_set_state /args->protocol == 6/ {
  $sk = args->skaddr;
  if (args->newstate < 4 && @birth[$sk] == 0) { @birth[$sk] = nsecs; }
  if (args->newstate == 2 || args->newstate == 9) { @skpid[$sk] = pid; @skcomm[$sk] = comm; }
  if (args->newstate == 7 && @birth[$sk]) {
    $delta_ms = (nsecs - @birth[$sk]) / 1e6;
    $tp = (struct tcp_sock *)$sk;
    $pid = @skpid[$sk];
    $comm = @skcomm[$sk];
    if ($comm == "") { $pid = pid; $comm = comm; }
    $saddr = ntop(0);
    $daddr = ntop(0);
    if (args->family == 2) { $saddr = ntop(2, args->saddr); $daddr = ntop(2, args->daddr); }
    else { $saddr = ntop(10, args->saddr_v6); $daddr = ntop(10, args->daddr_v6); }
    printf("%-5d %-10.10s %-15s %-5d %-15s %-6d ", $pid, $comm, $saddr, args->sport, $daddr, args->dport);
    printf("%5d %5d %d\n", $tp->bytes_acked / 1024, $tp->bytes_received / 1024, $delta_ms);
    delete(@birth[$sk]); delete(@skpid[$sk]); delete(@skcomm[$sk]);
  }
}
tracepoint:tcp:tcp_retransmit_skb {
  $saddr = ntop(0);
  $daddr = ntop(0);
  if (args->family == 2) { $saddr = ntop(2, args->saddr); $daddr = ntop(2, args->daddr); }
  else { $saddr = ntop(10, args->saddr_v6); $daddr = ntop(10, args->daddr_v6); }
  $statestr = @tcp_states[args->state];
  time("%H:%M:%S ");
  printf("%-8d %14s:%-6d %14s:%-6d %6s\n", pid, $saddr, args->sport, $daddr, args->dport, $statestr);
}
END { clear(@birth); clear(@skpid); clear(@skcomm); clear(@tcp_states); }
)"};

}  // namespace netwatch::bench
