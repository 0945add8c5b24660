// LibbpfDiagnosis turns what libbpf printed during a failed load into the one line a user sees.
// The lines below are libbpf's and the verifier's own wording (libbpf 1.1, kernels 5.10 and 6.18).
#include <gtest/gtest.h>

#include "kernel/libbpf_log.h"
#include "util/log.h"

namespace netwatch::kernel {
namespace {

void feed(LibbpfDiagnosis& d, std::initializer_list<const char*> lines) {
  for (const char* line : lines) d.add(line);
}

TEST(LibbpfDiagnosis, names_the_program_and_the_verifiers_last_word) {
  LibbpfDiagnosis d;
  feed(d, {"libbpf: prog 'btf_set_state': BPF program load failed: Invalid argument",
           "libbpf: prog 'btf_set_state': -- BEGIN PROG LOAD LOG --", "0: (bf) r7 = r1",
           "56: (85) call bpf_get_socket_cookie#46", "unknown func bpf_get_socket_cookie#46",
           "processed 57 insns (limit 1000000) max_states_per_insn 0 total_states 3 peak_states 3 mark_read 2",
           "-- END PROG LOAD LOG --", "libbpf: prog 'btf_set_state': failed to load: -22",
           "libbpf: failed to load object 'netwatch_bpf'"});
  EXPECT_EQ(d.reason(), "prog 'btf_set_state': unknown func bpf_get_socket_cookie#46");
}

TEST(LibbpfDiagnosis, a_core_relocation_without_target_is_the_reason) {
  LibbpfDiagnosis d;
  feed(d, {"libbpf: prog 'tp_retransmit': BPF program load failed: Invalid argument",
           "libbpf: prog 'tp_retransmit': -- BEGIN PROG LOAD LOG --", "8: <invalid CO-RE relocation>",
           "failed to resolve CO-RE relocation <byte_off> [26] struct trace_event_raw_tcp_retransmit_skb.skaddr "
           "(0:2 @ offset 16)",
           "processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
           "-- END PROG LOAD LOG --"});
  EXPECT_EQ(d.reason(),
            "prog 'tp_retransmit': failed to resolve CO-RE relocation <byte_off> [26] struct "
            "trace_event_raw_tcp_retransmit_skb.skaddr (0:2 @ offset 16)");
}

TEST(LibbpfDiagnosis, nothing_said_is_no_reason) {
  LibbpfDiagnosis d;
  EXPECT_EQ(d.reason(), "");
}

}  // namespace
}  // namespace netwatch::kernel
