// TCP_INFO as the running kernel defines it. glibc's struct tcp_info stops before
// tcpi_segs_out and the byte counters, and <linux/tcp.h> cannot share a translation unit with
// <netinet/tcp.h>, so the read lives in a file of its own.
#pragma once

#include <cstdint>

namespace nwtest {

struct KernelTcpInfo {
  uint8_t state = 0;  // TCP_ESTABLISHED = 1 ... TCP_CLOSE = 7
  uint32_t rtt_us = 0;
  uint32_t rttvar_us = 0;
  uint32_t unacked = 0;
  uint32_t total_retrans = 0;
  uint32_t segs_out = 0;
  uint32_t segs_in = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_acked = 0;
  uint64_t bytes_received = 0;
};

KernelTcpInfo read_kernel_tcp_info(int fd);  // throws std::runtime_error

}  // namespace nwtest
