// Filesystem confinement of the running agent, with Landlock (Linux 5.13+, no privilege needed).
#pragma once

#include <string>

namespace netwatch::sandbox {

// From here on this thread, and every thread and child it makes later, can neither write, create,
// remove, rename nor execute any file: only reading stays allowed. The agent needs nothing more
// once it has started (the checkpoint goes into a map through a descriptor it holds, logs go to
// stderr), and so the host paths mounted into its pod stay untouched even where a mount is
// writable by mistake, e.g. the cgroup v1 and unified submounts below a hybrid host's
// /sys/fs/cgroup when the runtime does not honour recursiveReadOnly: uid 0 owns those files, so
// dropping capabilities alone does not protect them. Needs no_new_privs (set by
// drop_all_capabilities). Returns "" when in force, otherwise why not (e.g. the kernel has no
// Landlock, or it is not among the enabled LSMs).
std::string forbid_filesystem_writes();

}  // namespace netwatch::sandbox
