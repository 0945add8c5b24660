#include "bench/agent_readings.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bench/loopback_load.h"
#include "util/log.h"

namespace netwatch::bench {
namespace {

// "VmRSS:    12345 kB" -> bytes; 0 when the key is missing.
uint64_t status_kib(const std::string& status, const std::string& key) {
  size_t at = status.find(key + ":");
  if (at == std::string::npos) return 0;
  return std::strtoull(status.c_str() + at + key.size() + 1, nullptr, 10) * 1024;
}

}  // namespace

ProcessUsage process_usage(pid_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream stat_file(proc + "/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
  size_t paren = stat.rfind(')');  // comm may hold spaces; the fields after it do not
  if (paren == std::string::npos) throw util::FatalError("cannot read " + proc + "/stat: the process is gone");
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  // After ")": state is field 3 of proc(5); utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  std::ifstream status_file(proc + "/status");
  std::string status((std::istreambuf_iterator<char>(status_file)), {});
  ProcessUsage u;
  u.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  u.rss_bytes = status_kib(status, "VmRSS");
  u.hwm_bytes = status_kib(status, "VmHWM");
  return u;
}

std::vector<MapMemory> maps_held_by(pid_t pid) {
  std::vector<uint32_t> ids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fdinfo", ec)) {
    std::ifstream f(entry.path());
    std::string key;
    uint64_t value = 0;
    // A BPF map's fdinfo has "map_type:", ..., "map_id:" (bpf_map_show_fdinfo()).
    while (f >> key) {
      if (key == "map_id:" && (f >> value)) {
        if (std::find(ids.begin(), ids.end(), value) == ids.end()) ids.push_back(static_cast<uint32_t>(value));
        break;
      }
      f.ignore(4096, '\n');
    }
  }
  std::vector<MapMemory> maps;
  for (uint32_t id : ids) {
    auto j = nlohmann::json::parse(nwtest::run_command({"bpftool", "--json", "map", "show", "id", std::to_string(id)}));
    maps.push_back({id, j.value("name", ""), j.value("type", ""), j.value("max_entries", uint64_t{0}),
                    j.value("bytes_memlock", uint64_t{0})});
  }
  std::sort(maps.begin(), maps.end(), [](const MapMemory& a, const MapMemory& b) { return a.id < b.id; });
  return maps;
}

void add_agent_options(CLI::App& app, AgentCommand& agent) {
  app.add_option("--agent-port", agent.port, "the agent's --listen port on 127.0.0.1")->capture_default_str();
  app.add_option("--netwatch", agent.binary, "the netwatch binary")->capture_default_str();
  app.add_option("--agent-flag", agent.flags,
                 "one more `netwatch agent` argument (repeatable), e.g. --agent-flag=--ring-size=8192");
}

std::unique_ptr<nwtest::AgentProcess> start_agent(const AgentCommand& command, const std::atomic<bool>& stop) {
  if (is_listening(command.port))
    throw util::FatalError("127.0.0.1:" + std::to_string(command.port) + " is in use; pick another --agent-port");
  std::vector<std::string> flags = {"--pin-dir", ""};  // a benchmark run leaves nothing attached for the next
  flags.insert(flags.end(), command.flags.begin(), command.flags.end());
  nwtest::AgentOptions options;
  options.binary = command.binary;
  options.global_flags = {"--log-level", "warn"};
  options.child = nwtest::kBackgroundProgram;
  options.ready_timeout = std::chrono::seconds(20);
  options.http_timeout = std::chrono::seconds(30);  // /metrics at 50k series under wrk
  options.stop = &stop;
  try {
    return std::make_unique<nwtest::AgentProcess>(command.port, flags, options);
  } catch (const std::runtime_error&) {
    if (stop) throw util::FatalError("interrupted", 130);
    throw;
  }
}

double metric_sum(std::string_view text, std::string_view name) {
  double sum = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.substr(0, name.size()) != name || line.size() == name.size()) continue;
    char next = line[name.size()];
    if (next != '{' && next != ' ') continue;  // another metric whose name starts with this one
    size_t space = line.rfind(' ');
    sum += std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
  }
  return sum;
}

size_t series_count(std::string_view text) {
  size_t n = 0, pos = 0;
  while (pos < text.size()) {
    if (text[pos] != '#' && text[pos] != '\n') ++n;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return n;
}

std::string default_netwatch_binary() {
  return NETWATCH_BINARY;
}

}  // namespace netwatch::bench
