#include "kernel/libbpf_log.h"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string_view>

#include "util/log.h"

namespace netwatch::kernel {
namespace {

thread_local LibbpfDiagnosis* t_diagnosis = nullptr;

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  // The verifier's log comes as one message of many lines: sized, not cut at a fixed buffer.
  va_list copy;
  va_copy(copy, args);
  int size = vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::string buf(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  vsnprintf(buf.data(), buf.size() + 1, format, args);
  std::string_view line(buf);
  while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (level == LIBBPF_WARN && t_diagnosis) {
    for (size_t start = 0; start <= line.size();) {
      size_t end = std::min(line.find('\n', start), line.size());
      t_diagnosis->add(std::string(line.substr(start, end - start)));
      start = end + 1;
    }
  }
  // While a diagnosis listens, its one-line reason speaks for the warnings: they go to debug.
  util::log(level == LIBBPF_WARN && !t_diagnosis ? util::LogLevel::warn : util::LogLevel::debug,
            "libbpf: " + std::string(line));
  return 0;
}

}  // namespace

void route_libbpf_logs() { libbpf_set_print(libbpf_print); }

LibbpfDiagnosis::LibbpfDiagnosis() : outer_(t_diagnosis) { t_diagnosis = this; }
LibbpfDiagnosis::~LibbpfDiagnosis() { t_diagnosis = outer_; }

void LibbpfDiagnosis::add(const std::string& line) {
  if (!line.empty()) lines_.push_back(line);
}

std::string LibbpfDiagnosis::reason() const {
  // libbpf names the program in "prog 'NAME': ..." lines; the verifier's own lines do not.
  std::string prog;
  std::string relocation, verifier_last;
  bool in_log = false;
  for (const std::string& line : lines_) {
    size_t p = line.find("prog '");
    if (p != std::string::npos && prog.empty()) prog = line.substr(p, line.find('\'', p + 6) + 1 - p);
    if (line.find("-- BEGIN PROG LOAD LOG --") != std::string::npos) {
      in_log = true;
    } else if (line.find("-- END PROG LOAD LOG --") != std::string::npos) {
      in_log = false;
    } else if (line.find("failed to resolve CO-RE relocation") != std::string::npos) {
      if (relocation.empty()) relocation = line.substr(line.find("failed to resolve"));
    } else if (in_log && line.rfind("processed ", 0) != 0 && line.rfind("verification time", 0) != 0 &&
               line.rfind("stack depth", 0) != 0 && line.find("<invalid CO-RE relocation>") == std::string::npos) {
      verifier_last = line;
    }
  }
  std::string why = !relocation.empty() ? relocation : verifier_last;
  if (why.empty()) return "";
  return prog.empty() ? why : prog + ": " + why;
}

}  // namespace netwatch::kernel
