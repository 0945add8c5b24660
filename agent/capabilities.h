// Dropping privileges once they have done their job.
#pragma once

namespace netwatch {

// Clears every capability (effective, permitted, inheritable and the bounding set) and sets
// no_new_privs. Called once the probes are attached and the port is bound: reading the ring
// buffer, the maps and the programs' stats goes through file descriptors already held, and
// pod labels come from files root owns. Throws FatalError when the kernel refuses.
void drop_all_capabilities();

}  // namespace netwatch
