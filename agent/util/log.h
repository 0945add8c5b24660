// Leveled logging to stderr (kernel/libbpf_log.h routes libbpf's own messages here too).
#pragma once

#include <stdexcept>
#include <string>

namespace netwatch::util {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log(LogLevel level, const std::string& message);

inline void log_debug(const std::string& m) { log(LogLevel::debug, m); }
inline void log_info(const std::string& m) { log(LogLevel::info, m); }
inline void log_warn(const std::string& m) { log(LogLevel::warn, m); }
inline void log_error(const std::string& m) { log(LogLevel::error, m); }

// The one fatal error type: main() prints "netwatch: <what>" and exits with exit_code.
// The message says what is wrong and what to do about it.
class FatalError : public std::runtime_error {
 public:
  explicit FatalError(const std::string& what, int exit_code = 1)
      : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Exit code for usage and environment errors (bad flag, missing privilege, no BTF).
inline constexpr int kExitUsage = 2;

}  // namespace netwatch::util
