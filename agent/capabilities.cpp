#include "agent/capabilities.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "agent/log.h"

namespace netwatch {

void drop_all_capabilities() {
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
  for (cap_value_t cap = 0; cap <= cap_max_bits() - 1; ++cap) {
    if (CAP_IS_SUPPORTED(cap) && cap_drop_bound(cap) != 0 && errno != EINVAL)
      throw FatalError(std::string("dropping capabilities failed: ") + std::strerror(errno));
  }
  std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)> none(cap_init(), cap_free);
  if (!none || cap_set_proc(none.get()) != 0)
    throw FatalError(std::string("dropping capabilities failed: ") + std::strerror(errno));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    throw FatalError(std::string("setting no_new_privs failed: ") + std::strerror(errno));
  log_info("dropped all capabilities");
}

}  // namespace netwatch
