// Which BPF programs and links exist, from two independent sources: bpftool (what the kernel
// lists) and /proc/<pid>/fdinfo (which process holds which program or link). bpftool on this
// machine is built without pid iterators, so fdinfo is how a program is tied to its owner.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace nwtest {

struct BpfProgram {
  uint32_t id = 0;
  std::string name;
};

struct BpfLink {
  uint32_t id = 0;
  uint32_t prog_id = 0;
};

std::vector<BpfProgram> bpftool_programs();  // `bpftool -j prog show`
std::vector<BpfLink> bpftool_links();        // `bpftool -j link show`

// netwatch's program names: btf_ or tp_ followed by set_state, retransmit, retransmit_synack
// or probe (kernel names are cut at 15 characters when there is no BTF name).
bool is_netwatch_program(const std::string& name);

// Program ids (prog_id: in fdinfo) that `pid`'s descriptors refer to: its programs and the
// programs of its links.
std::set<uint32_t> programs_held_by(pid_t pid);
// The same for every process on the machine.
std::set<uint32_t> programs_held_by_any_process();
// Programs of the links pinned anywhere under `bpffs`: an agent's intended pins (--pin-dir).
std::set<uint32_t> programs_of_pinned_links(const std::string& bpffs = "/sys/fs/bpf");

}  // namespace nwtest
