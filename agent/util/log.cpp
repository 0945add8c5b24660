#include "util/log.h"

#include <atomic>
#include <cstdio>

namespace netwatch::util {
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

}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log(LogLevel level, const std::string& message) {
  if (level < g_level) return;
  std::fprintf(stderr, "netwatch %s: %s\n", level_name(level), message.c_str());
}

}  // namespace netwatch::util
