// SPDX-License-Identifier: GPL-2.0
/*
 * netwatch kernel side: TCP connect, retransmit and ACK-path probes.
 *
 * Every hook exists twice: a tp_btf program (typed struct sock *, per-socket
 * state in a hash while the socket is young, then in sk_storage) and a classic
 * tracepoint program (the fallback, per-socket state in the hash only). Both are
 * thin wrappers around one handler; userspace turns off the autoload of the
 * losing set.
 *
 * Wakeups, not copies, are what cost (a wakeup per event costs the reader far
 * more than the event's copy): events are submitted without waking the reader, which drains on a timer; while more than
 * wakeup_bytes wait, each CPU forces a wakeup at most every 10 ms.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "netwatch.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/* Load-time knobs, written by userspace between open and load. */
const volatile __u64 rtt_interval_ns = 1000000000ULL;
/* The retransmit reports' interval (on_retransmit()); 0 reports every one (trace). */
const volatile __u64 retrans_interval_ns = 1000000000ULL;
const volatile __u64 wakeup_bytes = 256 * 1024;
const volatile bool use_perfbuf = false;
/* Tracing programs may call bpf_sk_storage_get/delete (v5.11, 8e4597c627fb) and
 * bpf_get_socket_cookie (v5.12, c5dbb89fc2ac). Userspace clears it where the
 * tp_btf variant does not load with them; that variant then keeps every socket
 * in sock_table, as the classic one does, and the calls are dead code the
 * verifier never walks. */
const volatile bool tracing_sk_helpers = true;

struct sock_state {
	__u64 id;           /* what events carry as cookie */
	__u64 start_ns;     /* SYN_SENT (outbound) or ESTABLISHED (inbound) */
	__u64 last_rtt_ns;  /* last RTT sample sent to userspace; start_ns before the first */
	__u64 last_retrans_ns; /* last retransmit report: tcp_mstamp in ns */
	__u64 last_retrans_hit_ns; /* last retransmission, reported or not: tcp_mstamp in ns */
	__u64 cgroup_id;    /* fixed for the socket's life: read once, not per event */
	__u32 netns_ino;
	__u32 retrans_seen; /* tcp_sock.total_retrans at the last retransmit report */
	__u32 pid;
	char comm[NW_COMM_LEN];
	__u8 direction;
};

/*
 * Where a socket's state lives (tp_btf variant):
 *  - sock_table, a hash keyed by the socket's address, from connect or accept
 *    while the socket is young: a hash entry is made and deleted an order of
 *    magnitude faster than an sk_storage one (BENCHMARKS.md, probe cost), and
 *    most connections are short;
 *  - sock_storage once it lives on: a socket moves there at its first RTT
 *    sample (it has lived an rtt interval and still receives), because the
 *    ACK path reaches sk_storage through the socket, cheaper per segment than
 *    a hash lookup. Sockets first met on the ACK or retransmit path
 *    (older than netwatch) start there; so do young ones when the table is full.
 * The classic tracepoint variant, and the tp_btf variant on kernels whose
 * tracing programs cannot use sk_storage (tracing_sk_helpers), keep every
 * socket in sock_table.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_state);
} sock_storage SEC(".maps");

/* Sized by userspace; an entry leaves at TCP_CLOSE or when it moves to sock_storage.
 * Userspace preallocates it where the kernel has no BPF memory allocator (before
 * v6.1, 7c8199e24fa0): there run-time allocation from a tracepoint is unsafe. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_state);
} sock_table SEC(".maps");

/*
 * Who owns each listening socket: the process that called listen(), whose
 * context inet_csk_listen_start() changes the state to TCP_LISTEN in. Keyed by
 * the address of the listener's tcp_sock.tsorted_sent_queue (listener_key()),
 * removed when the listener leaves TCP_LISTEN; when full, new listeners go
 * unowned and are counted (listeners_full). Listeners older than netwatch are
 * not in it: their connections have no owner (pid 0). Preallocated by
 * userspace where the kernel has no BPF memory allocator, as sock_table.
 */
struct listener_owner {
	__u32 pid;
	char comm[NW_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct listener_owner);
} listeners SEC(".maps");

/*
 * Per CPU: the owner of the listener whose child socket this CPU just cloned,
 * for that child's TCP_ESTABLISHED (on_state_change()). tcp_check_req() (or the
 * syncookie path) clones the child and tcp_child_process() establishes it in
 * the same softirq on the same CPU, so one slot per CPU carries it across. A
 * child established later (TCP Fast Open: cloned at the SYN) finds another
 * child's or no slot and goes unowned; child and port both must match.
 */
struct accept_handoff {
	__u64 child;
	__u16 port;
	struct listener_owner owner;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct accept_handoff);
} accept_handoff SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events_perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nw_counters);
} counters SEC(".maps");

/* Per CPU: when it last forced the reader awake (event_finish()). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_wakeup SEC(".maps");

/* At the default ring (4 MiB, mark at 1 MiB) the 3 MiB above the mark hold
 * many times 10 ms of events even at 100k events/s: a wakeup every 10 ms per
 * CPU is plenty. */
#define WAKEUP_GAP_NS 10000000ULL

/* perfbuf transport: events are built here and copied out by bpf_perf_event_output(). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nw_event);
} event_scratch SEC(".maps");

static __always_inline struct nw_counters *counters_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline void count_event(__u8 type, bool lost)
{
	struct nw_counters *c = counters_get();

	if (!c || type >= NW_EV_TYPE_COUNT)
		return;
	if (lost)
		__sync_fetch_and_add(&c->lost[type], 1);
	else
		__sync_fetch_and_add(&c->emitted[type], 1);
}

/*
 * Where an event is built: in place in the ring buffer (no zeroed copy on the
 * stack, no second copy into the ring), or in a per-CPU scratch event for the
 * perf buffer. Not zeroed: fill_header() and the caller write every field.
 */
static __always_inline struct nw_event *event_start(__u8 type)
{
	struct nw_event *ev;
	__u32 zero = 0;

	if (use_perfbuf)
		return bpf_map_lookup_elem(&event_scratch, &zero);
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev)
		count_event(type, true);
	return ev;
}

static __always_inline void event_finish(void *ctx, struct nw_event *ev, __u8 type)
{
	__u64 flags = BPF_RB_NO_WAKEUP, *last;
	__u32 zero = 0;
	long err;

	if (use_perfbuf) {
		/* The perf event's wakeup watermark plays the role of wakeup_bytes. */
		err = bpf_perf_event_output(ctx, &events_perf, BPF_F_CURRENT_CPU, ev, sizeof(*ev));
		count_event(type, err != 0);
		return;
	}
	/* Past the mark, wake the reader at most every 10 ms per CPU: waking
	 * on every submit sent an IPI per event until the reader had run (their
	 * cost is in BENCHMARKS.md). ts_ns was just written. */
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes) {
		last = bpf_map_lookup_elem(&last_wakeup, &zero);
		if (last && ev->ts_ns - *last >= WAKEUP_GAP_NS) {
			*last = ev->ts_ns;
			flags = BPF_RB_FORCE_WAKEUP;
		}
	}
	bpf_ringbuf_submit(ev, flags);
	count_event(type, false);
}

/*
 * Field reads. tp_btf programs get BTF pointers and load fields directly; classic
 * tracepoint programs get plain addresses and must go through bpf_probe_read_kernel().
 * `btf` is a compile-time constant in every inlined instance, so one arm survives.
 */
#define KREAD(btf, p, ...) ((btf) ? (p)->__VA_ARGS__ : BPF_CORE_READ(p, __VA_ARGS__))

/* Per-socket state in sk_storage, ids from bpf_get_socket_cookie(). */
static __always_inline bool sk_helpers(bool btf)
{
	return btf && tracing_sk_helpers;
}

static __always_inline __u64 sock_id(struct sock *sk, bool btf)
{
	__u64 cookie;

	if (sk_helpers(btf))
		return bpf_get_socket_cookie(sk); /* generates one if needed */
	/* Without the helper no cookie can be generated. Until the kernel has made
	 * one (tcp_probe does), a stand-in: the clock at first sight and the CPU,
	 * unique among live sockets (a CPU meets one socket at a time) and kept in
	 * the socket's state for its life. No kernel address goes into it; the top
	 * bit keeps it apart from real cookies, which count up from 1. */
	cookie = KREAD(btf, sk, __sk_common.skc_cookie.counter);
	if (cookie)
		return cookie;
	return (bpf_ktime_get_ns() << 12) | (bpf_get_smp_processor_id() & 0xfff) | (1ULL << 63);
}

/* NULL only for a socket that is not a full TCP socket: never on these tracepoints. */
static __always_inline struct tcp_sock *tcp_of(struct sock *sk, bool btf)
{
	return btf ? bpf_skc_to_tcp_sock(sk) : (struct tcp_sock *)sk;
}

/* sock_cgroup_data before v5.15 (8520e224f547): a union whose val is the
 * struct cgroup * unless its low bits say it holds a net_cls classid or
 * net_prio index instead (sock_cgroup_ptr() then answers the root cgroup). */
struct sock_cgroup_data___packed {
	__u64 val;
} __attribute__((preserve_access_index));

static __always_inline __u64 sk_cgroup_id(struct sock *sk, bool btf)
{
	struct sock_cgroup_data___packed *old;
	struct cgroup *cg;
	__u64 val;

	if (bpf_core_field_exists(sk->sk_cgrp_data.cgroup)) {
		cg = KREAD(btf, sk, sk_cgrp_data.cgroup);
		if (!cg)
			return 0;
		return btf ? cg->kn->id : BPF_CORE_READ(cg, kn, id);
	}
	/* Read once per socket: a probe read is cheap enough here. */
	old = (void *)&sk->sk_cgrp_data;
	val = BPF_CORE_READ(old, val);
	if (!val || (val & 3))
		return 0;
	cg = (struct cgroup *)val;
	return BPF_CORE_READ(cg, kn, id);
}

static __always_inline __u32 sk_netns_ino(struct sock *sk, bool btf)
{
	struct net *net = KREAD(btf, sk, __sk_common.skc_net.net);

	return net ? KREAD(btf, net, ns.inum) : 0;
}

/* Who the socket is: fixed for its life, so read once instead of per event
 * (cgroup and netns are two pointer chases each). */
static __always_inline void state_init(struct sock_state *st, struct sock *sk, struct tcp_sock *tp,
				       bool btf)
{
	st->id = sock_id(sk, btf);
	st->retrans_seen = KREAD(btf, tp, total_retrans);
	st->last_retrans_ns = 0;
	st->last_retrans_hit_ns = 0;
	st->cgroup_id = sk_cgroup_id(sk, btf);
	st->netns_ino = sk_netns_ino(sk, btf);
}

static __always_inline void count_state(bool tracked)
{
	struct nw_counters *c = counters_get();

	if (!c)
		return;
	if (tracked)
		__sync_fetch_and_add(&c->state_spilled, 1);
	else
		__sync_fetch_and_add(&c->state_full, 1);
}

/*
 * The socket's state, or NULL. *young says it is in sock_table.
 */
static __always_inline struct sock_state *state_find(struct sock *sk, bool btf, bool *young)
{
	struct sock_state *st;
	__u64 key = (__u64)sk;

	*young = false;
	if (sk_helpers(btf)) {
		st = bpf_sk_storage_get(&sock_storage, sk, 0, 0);
		if (st) /* id 0: storage another CPU made and has not yet filled */
			return st->id ? st : 0;
	}
	st = bpf_map_lookup_elem(&sock_table, &key);
	if (!st)
		return 0;
	/* An entry whose socket's close went unseen (a program run the kernel
	 * skipped) may meet a new socket at the same address: the cookie says
	 * whose it is. */
	if (sk_helpers(btf) && st->id != bpf_get_socket_cookie(sk)) {
		bpf_map_delete_elem(&sock_table, &key);
		return 0;
	}
	*young = true;
	return st;
}

/*
 * State for a socket first met on the ACK or retransmit path: it was there
 * before netwatch, so it is likely to live on (sk_storage in the tp_btf
 * variant). Its retrans_seen baseline is the current total.
 */
static __always_inline struct sock_state *state_create(struct sock *sk, struct tcp_sock *tp, bool btf)
{
	struct sock_state *st, zero = {};
	__u64 key = (__u64)sk;

	if (sk_helpers(btf)) {
		/* New storage is zeroed; it may also be another CPU's, not yet filled. */
		st = bpf_sk_storage_get(&sock_storage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	} else if (bpf_map_update_elem(&sock_table, &key, &zero, BPF_NOEXIST) == 0) {
		st = bpf_map_lookup_elem(&sock_table, &key);
	} else {
		st = 0;
	}
	if (!st) {
		count_state(false);
		return 0;
	}
	state_init(st, sk, tp, btf);
	return st;
}

/* The socket's state, made on first sight (*fresh). */
static __always_inline struct sock_state *state_get(struct sock *sk, struct tcp_sock *tp, bool btf,
						    bool *young, bool *fresh)
{
	struct sock_state *st = state_find(sk, btf, young);

	*fresh = !st;
	return st ? st : state_create(sk, tp, btf);
}

/* The state of a socket netwatch saw connect or accept, built by the caller:
 * into sock_table (replacing an entry a closed socket left at this address). */
static __always_inline bool state_put_young(struct sock *sk, struct sock_state *init, bool btf)
{
	struct sock_state *st;
	__u64 key = (__u64)sk;

	if (sk_helpers(btf)) {
		/* Storage the retransmit path made before the handshake ended. */
		st = bpf_sk_storage_get(&sock_storage, sk, 0, 0);
		if (st) {
			*st = *init;
			return true;
		}
	}
	if (bpf_map_update_elem(&sock_table, &key, init, BPF_ANY) == 0)
		return true;
	/* Table full: the socket's own storage, slower to make but unbounded. */
	if (sk_helpers(btf) && bpf_sk_storage_get(&sock_storage, sk, init, BPF_SK_STORAGE_GET_F_CREATE)) {
		count_state(true);
		return true;
	}
	count_state(false);
	return false;
}

/* A young socket's second RTT sample: it lives on, so its state moves to
 * sk_storage, which the ACK path finds without a hash. */
static __always_inline struct sock_state *state_promote(struct sock *sk, struct sock_state *st)
{
	struct sock_state *moved;
	__u64 key = (__u64)sk;

	moved = bpf_sk_storage_get(&sock_storage, sk, st, BPF_SK_STORAGE_GET_F_CREATE);
	if (!moved)
		return st; /* no memory now: stays young, tried again next sample */
	bpf_map_delete_elem(&sock_table, &key);
	return moved;
}

static __always_inline void state_delete(struct sock *sk, bool young, bool btf)
{
	__u64 key = (__u64)sk;

	if (young || !sk_helpers(btf))
		bpf_map_delete_elem(&sock_table, &key);
	else
		bpf_sk_storage_delete(&sock_storage, sk);
}

static __always_inline void read_stats(struct tcp_sock *tp, struct nw_tcp_stats *s, bool btf)
{
	/* Same shifts as tcp_get_info(). */
	s->srtt_us = KREAD(btf, tp, srtt_us) >> 3;
	s->rttvar_us = KREAD(btf, tp, mdev_us) >> 2;
	s->snd_cwnd = KREAD(btf, tp, snd_cwnd);
	s->total_retrans = KREAD(btf, tp, total_retrans);
	s->segs_out = KREAD(btf, tp, segs_out);
	s->segs_in = KREAD(btf, tp, segs_in);
	s->bytes_sent = KREAD(btf, tp, bytes_sent);
	s->bytes_acked = KREAD(btf, tp, bytes_acked);
	s->bytes_received = KREAD(btf, tp, bytes_received);
}

/*
 * Every field but stats: addresses, ports and owner of a full socket, and the
 * per-type fields zeroed for the caller to set. The event is not zeroed
 * beforehand (event_start()), so nothing here may be skipped.
 */
static __always_inline void fill_header(struct nw_event *ev, struct sock *sk, struct tcp_sock *tp,
					struct sock_state *st, __u8 type, __u64 now, bool btf)
{
	ev->ts_ns = now;
	ev->type = type;
	ev->family = KREAD(btf, sk, __sk_common.skc_family);
	ev->state = KREAD(btf, sk, __sk_common.skc_state);
	/* inet_sport, not skc_num: at TCP_CLOSE inet_put_port() has already
	 * zeroed inet_num when inet_sk_state_store() fires the tracepoint. */
	ev->sport = bpf_ntohs(KREAD(btf, tp, inet_conn.icsk_inet.inet_sport));
	ev->dport = bpf_ntohs(KREAD(btf, sk, __sk_common.skc_dport));
	if (ev->family == AF_INET) {
		__u32 *s = (__u32 *)ev->saddr, *d = (__u32 *)ev->daddr;

		s[0] = KREAD(btf, sk, __sk_common.skc_rcv_saddr);
		d[0] = KREAD(btf, sk, __sk_common.skc_daddr);
		s[1] = s[2] = s[3] = 0;
		d[1] = d[2] = d[3] = 0;
	} else if (btf) {
		__builtin_memcpy(ev->saddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
		__builtin_memcpy(ev->daddr, &sk->__sk_common.skc_v6_daddr, 16);
	} else {
		bpf_core_read(ev->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(ev->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	ev->cgroup_id = st->cgroup_id;
	ev->netns_ino = st->netns_ino;
	ev->cookie = st->id;
	ev->pid = st->pid;
	__builtin_memcpy(ev->comm, st->comm, sizeof(ev->comm));
	ev->direction = st->direction;
	ev->segs = 0;
	ev->error = 0;
	ev->latency_ns = 0;
	ev->duration_ns = 0;
}

/* Which inet_sock_set_state transitions anyone needs: decided on the
 * tracepoint's arguments alone, before any helper call or socket read. */
static __always_inline bool transition_wanted(int oldstate, int newstate)
{
	if (newstate == TCP_SYN_SENT)
		return true; /* connect(): the start */
	if (newstate == TCP_ESTABLISHED)
		return oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV;
	if (newstate == TCP_CLOSE)
		return oldstate != TCP_CLOSE; /* from TCP_LISTEN: a listener leaves */
	if (newstate == TCP_LISTEN)
		return true; /* listen(): its owner */
	if (newstate == TCP_SYN_RECV)
		return oldstate == TCP_LISTEN; /* a child cloned from its listener */
	return false; /* FIN_WAIT1, CLOSE_WAIT, ... */
}

/*
 * A listener's key in `listeners`: the address of its tsorted_sent_queue, an
 * empty list head that points to itself (tcp_init_sock(); a listener never
 * sends data). sk_clone_lock() copies the listener byte for byte, and
 * inet_csk_clone_lock() fires the tracepoint (LISTEN -> SYN_RECV) before
 * tcp_create_openreq_child() re-initialises the child's list head: at that
 * moment the child's tsorted_sent_queue.next is its own listener's key. That
 * names the very listener the kernel chose, so SO_REUSEPORT listeners sharing
 * an address and port, in different processes, stay apart, which a lookup by
 * (netns, address, port) cannot do. Should a kernel re-initialise the list
 * earlier, the child's own address is no listener's key: unowned, never wrong.
 */
static __always_inline __u64 listener_key(struct tcp_sock *tp)
{
	return (__u64)tp + bpf_core_field_offset(struct tcp_sock, tsorted_sent_queue);
}

static __always_inline void count_listener_full(void)
{
	struct nw_counters *c = counters_get();

	if (c)
		__sync_fetch_and_add(&c->listeners_full, 1);
}

/* The listener side of on_state_change(): listen(), a listener closing, and
 * a child cloned from a listener. No events; inbound attribution only. */
static __always_inline int on_listener_change(struct tcp_sock *tp, int oldstate, int newstate,
					      bool btf)
{
	struct accept_handoff *slot;
	struct listener_owner owner, *found;
	__u64 key;
	__u32 zero = 0;

	if (newstate == TCP_LISTEN) {
		owner.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(owner.comm, sizeof(owner.comm));
		key = listener_key(tp);
		if (bpf_map_update_elem(&listeners, &key, &owner, BPF_ANY))
			count_listener_full();
		return 0;
	}
	if (newstate == TCP_CLOSE) { /* from TCP_LISTEN */
		key = listener_key(tp);
		bpf_map_delete_elem(&listeners, &key);
		return 0;
	}
	/* TCP_SYN_RECV from TCP_LISTEN: the child, still a copy of its listener. */
	slot = bpf_map_lookup_elem(&accept_handoff, &zero);
	if (!slot)
		return 0;
	key = (__u64)KREAD(btf, tp, tsorted_sent_queue.next);
	found = bpf_map_lookup_elem(&listeners, &key);
	if (!found) {
		slot->child = 0;
		return 0;
	}
	slot->child = (__u64)tp;
	/* inet_sport is still the listener's: the child's local port. */
	slot->port = KREAD(btf, tp, inet_conn.icsk_inet.inet_sport);
	slot->owner = *found;
	return 0;
}

/* The owner of the listener that made this child (on_listener_change()), into
 * its state; the slot is used once. */
static __always_inline void take_listener_owner(struct sock_state *st, struct tcp_sock *tp, bool btf)
{
	struct accept_handoff *slot;
	__u32 zero = 0;

	slot = bpf_map_lookup_elem(&accept_handoff, &zero);
	if (!slot || slot->child != (__u64)tp)
		return;
	slot->child = 0;
	if (slot->port != KREAD(btf, tp, inet_conn.icsk_inet.inet_sport))
		return;
	st->pid = slot->owner.pid;
	__builtin_memcpy(st->comm, slot->owner.comm, sizeof(st->comm));
}

/* sock:inet_sock_set_state, TCP only, transition_wanted() already true: the
 * connect path and close. Connect start only fills the socket's state; the
 * established, failed or close event carries what it recorded. */
static __always_inline int on_state_change(void *ctx, struct sock *sk, int oldstate,
					   int newstate, bool btf)
{
	struct sock_state *st, young_init;
	struct tcp_sock *tp = tcp_of(sk, btf);
	struct nw_event *ev;
	bool young = false;
	__u8 type;
	__u64 now;

	if (!tp)
		return 0;
	if (newstate == TCP_LISTEN || newstate == TCP_SYN_RECV || oldstate == TCP_LISTEN)
		return on_listener_change(tp, oldstate, newstate, btf);

	if (newstate == TCP_SYN_SENT ||
	    (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV)) {
		/* A new connection: its state is built here and put young. Only
		 * connect() runs in the caller's context; an accept runs in softirq,
		 * whoever's context that is: its owner is its listener's. Zeroed:
		 * no sample yet. */
		__builtin_memset(&young_init, 0, sizeof(young_init));
		state_init(&young_init, sk, tp, btf);
		now = bpf_ktime_get_ns();
		young_init.start_ns = now;
		/* The first RTT sample an interval after the start, not at the first
		 * ACK: that one shows the handshake's RTT, and a connection shorter
		 * than the interval would report nothing else. Its close carries the
		 * final srtt, and the establishing event the handshake's. */
		young_init.last_rtt_ns = now;
		if (newstate == TCP_SYN_SENT) {
			young_init.direction = NW_DIR_OUTBOUND;
			young_init.pid = bpf_get_current_pid_tgid() >> 32;
			bpf_get_current_comm(young_init.comm, sizeof(young_init.comm));
			state_put_young(sk, &young_init, btf);
			return 0;
		}
		young_init.direction = NW_DIR_INBOUND;
		take_listener_owner(&young_init, tp, btf);
		if (!state_put_young(sk, &young_init, btf))
			return 0;
		st = &young_init;
		type = NW_EV_ACCEPT;
	} else {
		st = state_find(sk, btf, &young);
		if (!st)
			return 0;
		if (newstate == TCP_ESTABLISHED) {
			if (!st->start_ns)
				return 0; /* connect started before netwatch */
			type = NW_EV_CONNECT;
		} else {
			type = oldstate == TCP_SYN_SENT ? NW_EV_CONNECT_FAILED : NW_EV_CLOSE;
		}
		now = bpf_ktime_get_ns();
	}

	ev = event_start(type);
	if (!ev) {
		if (newstate == TCP_CLOSE)
			state_delete(sk, young, btf);
		return 0;
	}
	fill_header(ev, sk, tp, st, type, now, btf);
	ev->state = newstate; /* sk_state changes right after the tracepoint */
	if (type == NW_EV_CONNECT) {
		ev->latency_ns = now - st->start_ns;
	} else if (type == NW_EV_CONNECT_FAILED) {
		/* tcp_done_with_error() sets sk_err before tcp_done() closes. */
		ev->error = KREAD(btf, sk, sk_err);
		ev->latency_ns = st->start_ns ? now - st->start_ns : 0;
	} else if (type == NW_EV_CLOSE) {
		ev->duration_ns = st->start_ns ? now - st->start_ns : 0;
	}
	/* Connect failed and close carry the final counters: the retransmits not
	 * yet reported (rate limit) reach userspace with them. Connect and accept
	 * carry the handshake's srtt (tcp_ack() and tcp_synack_rtt_meas() ran
	 * before tcp_set_state(TCP_ESTABLISHED)) for the connection's first interval. */
	read_stats(tp, &ev->stats, btf);
	event_finish(ctx, ev, type);
	if (newstate == TCP_CLOSE)
		state_delete(sk, young, btf);
	return 0;
}

/*
 * tcp:tcp_retransmit_skb. Segments are counted as the kernel counts them: the
 * growth of tcp_sock.total_retrans (tcp_retransmit_skb() adds tcp_skb_pcount()
 * before the tracepoint fires).
 *
 * Aggregated per socket: a report goes out for the first retransmission after
 * a quiet retrans_interval_ns, at once ("since when"). While retransmissions go
 * on, a report goes out at most once an interval, and only if the socket sent
 * no RTT sample within the interval either: RTT samples carry the cumulative
 * total_retrans, which is what userspace counts, so a report next to them would
 * say nothing new. segs is the growth since the socket's previous report. The
 * hits in between compare timestamps and return; their growth reaches
 * userspace in whatever the socket emits next (a report, an RTT sample,
 * connect failed or close), so nothing is lost, and a black-holed socket (no
 * ACKs, so no RTT samples) still reports from here once an interval.
 */
static __always_inline int on_retransmit(void *ctx, struct sock *sk, const struct sk_buff *skb,
					 bool btf)
{
	struct tcp_sock *tp = tcp_of(sk, btf);
	struct sock_state *st;
	struct nw_event *ev;
	__u32 total, seen;
	__u64 now, prev_hit;
	bool fresh, young;

	if (!tp)
		return 0;
	st = state_get(sk, tp, btf, &young, &fresh);
	if (!st)
		return 0;
	/* tcp_mstamp, CLOCK_MONOTONIC in us, is refreshed by the write timer and
	 * the transmit path before they retransmit: no clock read on the skip path. */
	now = KREAD(btf, tp, tcp_mstamp) * 1000;
	prev_hit = st->last_retrans_hit_ns;
	st->last_retrans_hit_ns = now;
	/* Not quiet (a retransmission within the interval), and a report or an RTT
	 * sample went out within it too: nothing new to say. */
	if (retrans_interval_ns && !fresh && (__s64)(now - prev_hit) < (__s64)retrans_interval_ns &&
	    ((__s64)(now - st->last_retrans_ns) < (__s64)retrans_interval_ns ||
	     (__s64)(now - st->last_rtt_ns) < (__s64)retrans_interval_ns))
		return 0;
	total = KREAD(btf, tp, total_retrans);
	if (fresh) {
		/* First sight: only this skb's segments are known to be new. */
		struct tcp_skb_cb *cb = (struct tcp_skb_cb *)BPF_CORE_READ(skb, cb);
		__u16 pcount = BPF_CORE_READ(cb, tcp_gso_segs);

		st->retrans_seen = total - (pcount ? pcount : 1);
	}
	seen = st->retrans_seen;
	if (total == seen)
		return 0; /* the transmit failed and counted nothing */
	st->retrans_seen = total;
	st->last_retrans_ns = now;

	ev = event_start(NW_EV_RETRANSMIT);
	if (!ev)
		return 0;
	fill_header(ev, sk, tp, st, NW_EV_RETRANSMIT, bpf_ktime_get_ns(), btf);
	ev->segs = total - seen;
	read_stats(tp, &ev->stats, btf);
	event_finish(ctx, ev, NW_EV_RETRANSMIT);
	return 0;
}

/* tcp:tcp_retransmit_synack: the listener retransmits for a request sock. */
static __always_inline int on_retransmit_synack(void *ctx, const struct request_sock *req)
{
	const struct inet_request_sock *ireq = (const struct inet_request_sock *)req;
	struct nw_event *ev = event_start(NW_EV_RETRANSMIT);

	if (!ev)
		return 0;
	__builtin_memset(ev, 0, sizeof(*ev)); /* rare: no cookie, owner or stats */
	ev->ts_ns = bpf_ktime_get_ns();
	ev->type = NW_EV_RETRANSMIT;
	ev->state = TCP_SYN_RECV;
	ev->direction = NW_DIR_INBOUND;
	ev->segs = 1;
	ev->family = BPF_CORE_READ(ireq, req.__req_common.skc_family);
	ev->sport = BPF_CORE_READ(ireq, req.__req_common.skc_num);
	ev->dport = bpf_ntohs(BPF_CORE_READ(ireq, req.__req_common.skc_dport));
	if (ev->family == AF_INET) {
		bpf_core_read(ev->saddr, 4, &ireq->req.__req_common.skc_rcv_saddr);
		bpf_core_read(ev->daddr, 4, &ireq->req.__req_common.skc_daddr);
	} else {
		bpf_core_read(ev->saddr, 16, &ireq->req.__req_common.skc_v6_rcv_saddr);
		bpf_core_read(ev->daddr, 16, &ireq->req.__req_common.skc_v6_daddr);
	}
	event_finish(ctx, ev, NW_EV_RETRANSMIT);
	return 0;
}

static __always_inline int emit_rtt_sample(void *ctx, struct sock *sk, struct tcp_sock *tp,
					   struct sock_state *st, bool btf)
{
	struct nw_event *ev;
	__u64 now = bpf_ktime_get_ns();

	st->last_rtt_ns = now;
	ev = event_start(NW_EV_RTT);
	if (!ev)
		return 0;
	fill_header(ev, sk, tp, st, NW_EV_RTT, now, btf);
	read_stats(tp, &ev->stats, btf);
	event_finish(ctx, ev, NW_EV_RTT);
	return 0;
}

/* tcp:tcp_probe, every segment received on an established socket: the hot
 * path. Most hits only compare a timestamp in the socket's state. */
static __always_inline int on_probe(void *ctx, struct sock *sk, bool btf)
{
	struct sock_state *st;
	struct tcp_sock *tp = tcp_of(sk, btf);
	bool young, fresh;
	__s64 since;

	if (!tp)
		return 0;
	st = state_get(sk, tp, btf, &young, &fresh);
	if (!st)
		return 0;
	/* tcp_mstamp is CLOCK_MONOTONIC in us, refreshed right after this tracepoint
	 * (tcp_rcv_established()): one segment stale, but no clock read per hit.
	 * Signed: a stale stamp may predate the last sample. */
	since = (__s64)(KREAD(btf, tp, tcp_mstamp) * 1000 - st->last_rtt_ns);
	if (since < (__s64)rtt_interval_ns)
		return 0;
	if (sk_helpers(btf) && young)
		st = state_promote(sk, st);
	return emit_rtt_sample(ctx, sk, tp, st, btf);
}

/* ---- tp_btf variant ---- */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(btf_set_state, struct sock *sk, int oldstate, int newstate)
{
	if (!transition_wanted(oldstate, newstate))
		return 0;
	/* sk_protocol is a plain field since v5.6 (bf9765145b85): a direct load. */
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	return on_state_change(ctx, sk, oldstate, newstate, true);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(btf_retransmit, struct sock *sk, const struct sk_buff *skb)
{
	return on_retransmit(ctx, sk, skb, true);
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(btf_retransmit_synack, struct sock *sk, const struct request_sock *req)
{
	return on_retransmit_synack(ctx, req);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(btf_probe, struct sock *sk, const struct sk_buff *skb)
{
	return on_probe(ctx, sk, true);
}

/* ---- classic tracepoint variant (needs tracefs) ---- */

SEC("tracepoint/sock/inet_sock_set_state")
int tp_set_state(struct trace_event_raw_inet_sock_set_state *args)
{
	if (args->protocol != IPPROTO_TCP || !transition_wanted(args->oldstate, args->newstate))
		return 0;
	return on_state_change(args, (struct sock *)args->skaddr, args->oldstate,
			       args->newstate, false);
}

/* tcp_retransmit_skb's record: an instance of the tcp_event_sk_skb class up to
 * v6.12 at least, its own event (with err) in later kernels. The fields read are
 * the same; CO-RE picks the type the kernel has. */
struct trace_event_raw_tcp_retransmit_skb___own {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk_skb___class {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tp_retransmit(void *args)
{
	const void *sk, *skb;

	/* Probe reads: a direct load would be of a context pointer that clang
	 * offsets before the branch, which the verifier refuses. Retransmits are rare. */
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___own)) {
		struct trace_event_raw_tcp_retransmit_skb___own *rec = args;

		sk = BPF_CORE_READ(rec, skaddr);
		skb = BPF_CORE_READ(rec, skbaddr);
	} else {
		struct trace_event_raw_tcp_event_sk_skb___class *rec = args;

		sk = BPF_CORE_READ(rec, skaddr);
		skb = BPF_CORE_READ(rec, skbaddr);
	}
	return on_retransmit(args, (struct sock *)sk, (const struct sk_buff *)skb, false);
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int tp_retransmit_synack(struct trace_event_raw_tcp_retransmit_synack *args)
{
	return on_retransmit_synack(args, (const struct request_sock *)args->req);
}

SEC("tracepoint/tcp/tcp_probe")
int tp_probe(struct trace_event_raw_tcp_probe *args)
{
	/* skaddr joined tcp_probe's record in v6.x; doctor reports its absence. */
	if (!bpf_core_field_exists(args->skaddr))
		return 0;
	return on_probe(args, (struct sock *)args->skaddr, false);
}

char LICENSE[] SEC("license") = "GPL";
