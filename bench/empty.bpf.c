// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of the probe-cost benchmark: empty tp_btf programs on the hooks
 * netwatch attaches to. What they cost per hit is the tracepoint dispatch and
 * bpf_stats' own timing; netwatch's cost above this is what its code adds.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tp_btf/tcp_probe")
int empty_probe(void *ctx)
{
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int empty_set_state(void *ctx)
{
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int empty_retransmit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
