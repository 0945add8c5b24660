// Leveled logging to stderr. libbpf's own messages are routed here too.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace netwatch {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log(LogLevel level, const std::string& message);

inline void log_debug(const std::string& m) { log(LogLevel::debug, m); }
inline void log_info(const std::string& m) { log(LogLevel::info, m); }
inline void log_warn(const std::string& m) { log(LogLevel::warn, m); }
inline void log_error(const std::string& m) { log(LogLevel::error, m); }

// Sends libbpf's messages through log(): warnings at warn, the verifier's chatter at debug.
void route_libbpf_logs();

// While it lives, keeps libbpf's warnings on this thread (logging them at debug only), so that a
// failed load can say why in one line: the CO-RE relocation that found no target, or the
// verifier's last word.
class LibbpfDiagnosis {
 public:
  LibbpfDiagnosis();
  ~LibbpfDiagnosis();
  LibbpfDiagnosis(const LibbpfDiagnosis&) = delete;
  LibbpfDiagnosis& operator=(const LibbpfDiagnosis&) = delete;

  void add(const std::string& line);
  // "prog 'NAME': REASON", or "" when libbpf said nothing that explains a failure.
  std::string reason() const;

 private:
  std::vector<std::string> lines_;
  LibbpfDiagnosis* outer_;
};

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

}  // namespace netwatch
