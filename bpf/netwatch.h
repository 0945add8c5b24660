/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The event ABI between the kernel programs (netwatch.bpf.c) and userspace.
 * Fixed-width fields only, no pointers, explicit padding: both sides compile
 * this header and userspace checks every record's size before decoding it.
 * Change the layout only together with NW_EVENT_SIZE below.
 */
#ifndef NETWATCH_ABI_H
#define NETWATCH_ABI_H

#define NW_COMM_LEN 16

enum nw_event_type {
	NW_EV_CONNECT = 1,        /* outbound handshake completed: latency_ns */
	NW_EV_ACCEPT = 2,         /* inbound handshake completed */
	NW_EV_CONNECT_FAILED = 3, /* outbound SYN_SENT -> CLOSE: error, stats */
	NW_EV_RETRANSMIT = 4,     /* segs retransmitted since the socket's last report */
	NW_EV_RTT = 5,            /* from the ACK path, one per rtt interval, the first an
				   * interval after the start: stats */
	NW_EV_CLOSE = 6,          /* final summary: duration_ns, stats */
	NW_EV_TYPE_COUNT = 7,
};

enum nw_direction {
	NW_DIR_UNKNOWN = 0, /* socket existed before netwatch started */
	NW_DIR_OUTBOUND = 1,
	NW_DIR_INBOUND = 2,
};

/* A snapshot of struct tcp_sock in TCP_INFO's units (see tcp_get_info()). */
struct nw_tcp_stats {
	__u32 srtt_us;       /* tcpi_rtt: srtt_us >> 3 */
	__u32 rttvar_us;     /* tcpi_rttvar: mdev_us >> 2 */
	__u32 snd_cwnd;      /* tcpi_snd_cwnd */
	__u32 total_retrans; /* tcpi_total_retrans: retransmitted segments */
	__u32 segs_out;      /* tcpi_segs_out */
	__u32 segs_in;       /* tcpi_segs_in */
	__u64 bytes_sent;    /* tcpi_bytes_sent: payload bytes, retransmits included */
	__u64 bytes_acked;   /* tcpi_bytes_acked */
	__u64 bytes_received;/* tcpi_bytes_received */
};

struct nw_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cookie;    /* socket cookie: the connection's identity */
	__u64 cgroup_id; /* the socket's cgroup v2 id (an accepted socket inherits the listener's) */
	__u32 netns_ino; /* the socket's network namespace inode */
	__u32 pid;       /* tgid that called connect(), or listen() on the listener that accepted
			  * an inbound one; 0 when unknown (the listener predates netwatch) */
	char comm[NW_COMM_LEN];
	__u8 saddr[16]; /* local address; IPv4 in the first 4 bytes */
	__u8 daddr[16]; /* remote address */
	__u16 sport;    /* local port, host order */
	__u16 dport;    /* remote port, host order */
	__u8 family;    /* AF_INET or AF_INET6 as the socket has it */
	__u8 state;     /* TCP state (TCP_ESTABLISHED, ...) after the event */
	__u8 type;      /* enum nw_event_type */
	__u8 direction; /* enum nw_direction */
	__u32 segs;     /* NW_EV_RETRANSMIT: segments retransmitted since the socket's
			 * previous retransmit report (on_retransmit() in
			 * netwatch.bpf.c says when reports go out) */
	__s32 error;    /* NW_EV_CONNECT_FAILED: sk_err (positive errno), 0 = closed by the app */
	__u64 latency_ns;  /* NW_EV_CONNECT: SYN_SENT -> ESTABLISHED */
	__u64 duration_ns; /* NW_EV_CLOSE: connect start or accept -> CLOSE; 0 if unknown */
	struct nw_tcp_stats stats; /* every type but a SYN-ACK's RETRANSMIT (cookie 0): zero there */
};

#define NW_EVENT_SIZE 160

/* Per-CPU kernel counters, summed by userspace. */
struct nw_counters {
	__u64 emitted[NW_EV_TYPE_COUNT]; /* events handed to the transport */
	__u64 lost[NW_EV_TYPE_COUNT];    /* events the transport had no room for */
	__u64 state_full;                /* sockets not tracked: per-socket state could not be created */
	__u64 state_spilled;             /* young sockets put in sk_storage: sock_table was full */
	__u64 listeners_full;            /* listeners whose owner was not recorded: listeners was full */
};

#endif /* NETWATCH_ABI_H */
