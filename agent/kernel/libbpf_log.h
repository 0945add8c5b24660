// libbpf's own messages, routed through util/log.h, and the one-line reason for a failed load.
#pragma once

#include <string>
#include <vector>

namespace netwatch::kernel {

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

}  // namespace netwatch::kernel
