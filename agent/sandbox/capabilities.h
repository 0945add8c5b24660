// Dropping privileges once they have done their job.
#pragma once

namespace netwatch::sandbox {

// Clears every capability of the process: effective, permitted, inheritable and ambient, and the
// bounding set where the process may change it (CAP_SETPCAP: a root shell, not the chart's
// container, whose runtime already bounded it to CAP_BPF + CAP_PERFMON); then sets no_new_privs,
// so no exec can bring any back. Called once the probes are attached and the port is bound, before
// any other thread starts (capabilities are per thread; threads made later inherit the empty
// sets): reading the ring buffer, the maps and the programs' stats goes through file descriptors
// already held, and pod labels come from files any uid may read. Throws FatalError when the kernel
// refuses.
void drop_all_capabilities();

}  // namespace netwatch::sandbox
