#include "bench/loopback_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "util/fd.h"
#include "util/log.h"

namespace netwatch::bench {
namespace {

std::string sys_error(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

IperfPair::IperfPair(const IperfFlow& flow, const std::atomic<bool>& stop) : flow_(flow) {
  if (is_listening(flow.port))
    throw util::FatalError("127.0.0.1:" + std::to_string(flow.port) + " is already in use; pick another --port");
  server_ = std::make_unique<nwtest::ChildProcess>(
      std::vector<std::string>{"iperf3", "--server", "--bind", "127.0.0.1", "--port", std::to_string(flow.port)},
      nwtest::kBackgroundProgram);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!is_listening(flow.port)) {
    if (server_->exit_status() || stop || std::chrono::steady_clock::now() > deadline)
      throw util::FatalError("iperf3 server on port " + std::to_string(flow.port) + " did not start: " + server_->output());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void IperfPair::start_client() {
  std::vector<std::string> argv = {"iperf3",
                                   "--client",
                                   "127.0.0.1",
                                   "--port",
                                   std::to_string(flow_.port),
                                   "--time",
                                   std::to_string(flow_.duration.count()),
                                   "--json"};
  if (flow_.bitrate) argv.insert(argv.end(), {"--bitrate", std::to_string(*flow_.bitrate)});
  if (flow_.parallel > 1) argv.insert(argv.end(), {"--parallel", std::to_string(flow_.parallel)});
  if (flow_.segment_bytes) {
    std::string bytes = std::to_string(*flow_.segment_bytes);
    argv.insert(argv.end(), {"--set-mss", bytes, "--length", bytes, "--no-delay"});
  }
  client_ = std::make_unique<nwtest::ChildProcess>(argv, nwtest::kBackgroundProgram);
}

void IperfPair::wait(const std::atomic<bool>& stop) {
  auto status = client_->wait(flow_.duration + std::chrono::seconds(15), &stop);
  if (stop) throw util::FatalError("interrupted", 130);
  std::string out = client_->output();
  if (!status) throw util::FatalError("iperf3 client on port " + std::to_string(flow_.port) + " did not finish");
  nlohmann::json report = nlohmann::json::parse(out, nullptr, false);
  if (status->shell_code() != 0 || report.is_discarded() || report.contains("error"))
    throw util::FatalError("iperf3 client on port " + std::to_string(flow_.port) + " failed (exit " +
                     std::to_string(status->shell_code()) +
                     "): " + (report.contains("error") ? report["error"].dump() : out));
  received_bps_ = report["end"]["sum_received"].value("bits_per_second", 0.0);
}

InputLoss::InputLoss(uint16_t port, uint32_t one_in) : table_(kTablePrefix + std::to_string(getpid())) {
  remove_leftovers();
  nwtest::run_command({"nft", "add", "table", "inet", table_});
  try {
    nwtest::run_command({"nft", "add", "chain", "inet", table_, "input", "{ type filter hook input priority 0 ; }"});
    nwtest::run_command({"nft", "add", "rule", "inet", table_, "input", "tcp", "dport", std::to_string(port), "numgen",
                         "random", "mod", std::to_string(one_in), "==", "0", "counter", "drop"});
  } catch (...) {
    try {
      nwtest::run_command({"nft", "delete", "table", "inet", table_});
    } catch (const std::exception&) {
    }
    throw;
  }
}

InputLoss::~InputLoss() {
  try {
    nwtest::run_command({"nft", "delete", "table", "inet", table_});
  } catch (const std::exception& e) {
    util::log_error(std::string("could not delete the nftables table: ") + e.what() + "; run: nft delete table inet " +
                    table_);
  }
}

uint64_t InputLoss::dropped() const {
  std::string listing = nwtest::run_command({"nft", "list", "table", "inet", table_});
  std::smatch m;
  static const std::regex counter("counter packets ([0-9]+)");
  return std::regex_search(listing, m, counter) ? std::stoull(m[1]) : 0;
}

void InputLoss::remove_leftovers() {
  std::string listing = nwtest::run_command({"nft", "list", "tables", "inet"});
  static const std::regex ours(std::string("table inet ") + kTablePrefix + "([0-9]+)");
  for (std::sregex_iterator it(listing.begin(), listing.end(), ours), end; it != end; ++it) {
    const std::string pid = (*it)[1];
    if (access(("/proc/" + pid).c_str(), F_OK) == 0) continue;  // a live run's
    std::string table = kTablePrefix + pid;
    util::log_warn("deleting nftables table inet " + table + " left by an earlier run");
    nwtest::run_command({"nft", "delete", "table", "inet", table});
  }
}

uint32_t connect_burst(uint32_t count, const std::atomic<bool>& stop) {
  util::Fd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) throw util::FatalError(sys_error("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(listener.get(), 128) != 0 ||
      getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw util::FatalError(sys_error("listening on 127.0.0.1"));

  uint32_t done = 0;
  for (; done < count && !stop; ++done) {
    util::Fd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (client.get() < 0) throw util::FatalError(sys_error("socket"));
    if (connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw util::FatalError(sys_error("connect to 127.0.0.1:" + std::to_string(ntohs(addr.sin_port))));
    util::Fd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (server.get() < 0) throw util::FatalError(sys_error("accept"));
  }
  return done;
}

bool is_listening(uint16_t port) {
  std::ifstream f("/proc/net/tcp");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    // "  0: 0100007F:13C5 00000000:0000 0A ...": local address:port, remote, state (0A = LISTEN)
    std::istringstream in(line);
    std::string slot, local, remote, state;
    if (!(in >> slot >> local >> remote >> state) || state != "0A") continue;
    auto colon = local.find(':');
    if (colon != std::string::npos && std::stoul(local.substr(colon + 1), nullptr, 16) == port) return true;
  }
  return false;
}

}  // namespace netwatch::bench
