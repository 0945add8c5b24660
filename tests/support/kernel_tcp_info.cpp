#include "tests/support/kernel_tcp_info.h"

#include <linux/in.h>
#include <linux/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nwtest {

KernelTcpInfo read_kernel_tcp_info(int fd) {
  tcp_info raw{};
  socklen_t len = sizeof(raw);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &raw, &len) != 0)
    throw std::runtime_error(std::string("TCP_INFO: ") + std::strerror(errno));
  KernelTcpInfo info;
  info.state = raw.tcpi_state;
  info.rtt_us = raw.tcpi_rtt;
  info.rttvar_us = raw.tcpi_rttvar;
  info.unacked = raw.tcpi_unacked;
  info.total_retrans = raw.tcpi_total_retrans;
  info.segs_out = raw.tcpi_segs_out;
  info.segs_in = raw.tcpi_segs_in;
  info.bytes_sent = raw.tcpi_bytes_sent;
  info.bytes_acked = raw.tcpi_bytes_acked;
  info.bytes_received = raw.tcpi_bytes_received;
  return info;
}

}  // namespace nwtest
