#include "agent/log.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <string_view>

namespace netwatch {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "?";
}

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  char buf[1024];
  vsnprintf(buf, sizeof(buf), format, args);
  std::string_view line(buf);
  while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  log(level == LIBBPF_WARN ? LogLevel::warn : LogLevel::debug, "libbpf: " + std::string(line));
  return 0;
}

}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log(LogLevel level, const std::string& message) {
  if (level < g_level) return;
  std::fprintf(stderr, "netwatch %s: %s\n", level_name(level), message.c_str());
}

void route_libbpf_logs() { libbpf_set_print(libbpf_print); }

}  // namespace netwatch
