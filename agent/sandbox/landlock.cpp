#include "sandbox/landlock.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace netwatch::sandbox {
namespace {

// Added in Landlock ABI 3 (Linux 6.2); Debian 12's headers stop at ABI 2.
constexpr uint64_t kAccessFsTruncate = 1ULL << 14;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Sanitizer builds only: a sanitizer opens its report file (log_path in $ASAN_OPTIONS and friends)
// when it first reports, i.e. after the confinement; without this rule the report of an agent
// would be lost (scripts/sanitized-ctest.sh fails a run on any file in its report directory).
void allow_sanitizer_reports(int ruleset) {
  for (const char* var : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"}) {
    const char* options = std::getenv(var);
    const char* at = options ? std::strstr(options, "log_path=") : nullptr;
    if (!at) continue;
    std::string path(at + 9, std::strcspn(at + 9, ":"));
    std::string dir = path.substr(0, path.rfind('/') + 1);
    landlock_path_beneath_attr rule{};
    rule.allowed_access = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG;
    rule.parent_fd = open(dir.empty() ? "." : dir.c_str(), O_PATH | O_CLOEXEC);
    if (rule.parent_fd < 0) continue;
    syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    close(rule.parent_fd);
  }
}
#else
void allow_sanitizer_reports(int) {}
#endif

}  // namespace

std::string forbid_filesystem_writes() {
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1) return std::string("Landlock unavailable: ") + std::strerror(errno);
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                           LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
                           LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                           LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) attr.handled_access_fs |= kAccessFsTruncate;
  // Handled rights with no rule granting them back: denied everywhere. Reading is not handled.
  int fd = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0));
  if (fd < 0) return std::string("creating a Landlock ruleset failed: ") + std::strerror(errno);
  allow_sanitizer_reports(fd);
  long rc = syscall(SYS_landlock_restrict_self, fd, 0);
  int err = errno;
  close(fd);
  if (rc != 0) return std::string("Landlock restrict_self failed: ") + std::strerror(err);
  return "";
}

}  // namespace netwatch::sandbox
