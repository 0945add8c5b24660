// deny_bpf [--only-perf-event-open] PROGRAM [ARGS...]: runs PROGRAM under a seccomp filter that
// answers bpf() and perf_event_open() (or only the latter) with EPERM, as the container-tools
// default profile (podman, CRI-O) does for a process without CAP_SYS_ADMIN, whatever capabilities
// it holds. Everything else is allowed.
// For the kernel tests of the agent's and doctor's seccomp diagnosis (agent_privileges_test.cpp).
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#if defined(__x86_64__)
constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
#error "deny_bpf: add this architecture's AUDIT_ARCH"
#endif

int main(int argc, char** argv) {
  bool only_perf = argc > 1 && std::strcmp(argv[1], "--only-perf-event-open") == 0;
  if (only_perf) --argc, ++argv;
  if (argc < 2) {
    std::fprintf(stderr, "usage: deny_bpf [--only-perf-event-open] PROGRAM [ARGS...]\n");
    return 2;
  }
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, only_perf ? ~0u : __NR_bpf, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_perf_event_open, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
  };
  sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
  // no_new_privs lets a process without CAP_SYS_ADMIN install a filter; root keeps its capabilities.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    std::perror("deny_bpf: installing the seccomp filter");
    return 2;
  }
  execv(argv[1], argv + 1);
  std::perror("deny_bpf: exec");
  return 2;
}
