#include "sandbox/capabilities.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "util/log.h"

namespace netwatch::sandbox {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw util::FatalError("dropping capabilities failed: " + what + ": " + std::strerror(errno));
}

bool holds_effective(cap_value_t cap) {
  std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)> now(cap_get_proc(), cap_free);
  cap_flag_value_t value = CAP_CLEAR;
  return now && cap_get_flag(now.get(), cap, CAP_EFFECTIVE, &value) == 0 && value == CAP_SET;
}

}  // namespace

void drop_all_capabilities() {
  // The bounding set only limits what an exec could gain, which no_new_privs below rules out too;
  // dropping from it needs CAP_SETPCAP (cap_prctl_drop in security/commoncap.c), which a container
  // granted only CAP_BPF + CAP_PERFMON does not have: its runtime set the bounding set already.
  bool bounding = holds_effective(CAP_SETPCAP);
  for (cap_value_t cap = 0; bounding && cap < cap_max_bits(); ++cap) {
    if (CAP_IS_SUPPORTED(cap) && cap_drop_bound(cap) != 0 && errno != EINVAL) fail("bounding set");
  }
  if (cap_reset_ambient() != 0 && errno != EINVAL) fail("ambient set");  // EINVAL: kernel before 4.3
  std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)> none(cap_init(), cap_free);
  if (!none || cap_set_proc(none.get()) != 0) fail("effective, permitted and inheritable sets");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    throw util::FatalError(std::string("setting no_new_privs failed: ") + std::strerror(errno));
  util::log_info(bounding ? "dropped all capabilities"
                          : "dropped all capabilities (the bounding set is the runtime's)");
}

}  // namespace netwatch::sandbox
