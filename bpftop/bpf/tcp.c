// bpftop tcp collector: every outgoing TCP connect attempt as an event,
// then its outcome (established with latency, refused, failed) as a second
// event. Python joins the two by skaddr and aggregates.
//
// Feature blocks, chosen by the loader with integer -D flags only:
//   USE_TRACEPOINT  sock:inet_sock_set_state (CLOSE->SYN_SENT is the
//                   attempt, SYN_SENT->ESTABLISHED/CLOSE the outcome);
//                   otherwise kprobes on tcp_v4_connect/tcp_v6_connect
//                   (attempts only, no outcome or latency)
//   RESET_TP        also tcp:tcp_receive_reset, to tell "refused" (a reset
//                   arrived in SYN_SENT) from other failures
//   USE_RINGBUF     events through a BPF ring buffer of RINGBUF_PAGES pages;
//                   otherwise a perf buffer (user space picks its pages)
// Sizes: MAX_PENDING, MAX_FILTER_PIDS, MAX_FILTER_PORTS, RINGBUF_PAGES.
//
// The tracepoint rung never dereferences a kernel struct: skaddr is used as
// an opaque map key only, so headers of another kernel version are safe.

#include <uapi/linux/ptrace.h>
#ifndef USE_TRACEPOINT
#include <net/sock.h>
#endif

#include "common.h"

#define EV_CONNECT 1
#define EV_ESTABLISHED 2
#define EV_FAILED 3
#define EV_REFUSED 4
#define EV_CONNECT_FAILED 5  // kprobe rung: connect() failed at once

// tcp_states.h values; part of the tracepoint's ABI (its print format).
#define ST_ESTABLISHED 1
#define ST_SYN_SENT 2
#define ST_CLOSE 7
#define PROTO_TCP 6
#define FAM_INET 2
#define FAM_INET6 10

// The layout user space unpacks (collectors/tcp_events.py, EVENT_FORMAT):
// keep both in step. 88 bytes, no padding.
struct event {
    u64 ts_ns;       // bpf_ktime_get_ns() at this transition
    u64 skaddr;      // opaque socket address: the join key, never read
    u64 latency_ns;  // outcome events: SYN_SENT to this transition
    u32 pid;         // tgid of the connecting process
    u32 uid;
    u16 kind;        // EV_*
    u16 family;      // AF_INET or AF_INET6
    u16 sport;       // host order; 0 at the attempt (not chosen yet)
    u16 dport;       // host order
    u8 saddr[16];    // first 4 bytes for AF_INET
    u8 daddr[16];
    char comm[TASK_COMM_LEN];
};

// Events that found the buffer full, per CPU: [0] attempts, [1] outcomes.
BPF_PERCPU_ARRAY(lost, u64, 2);

#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif

// Process and destination port (host order) filters, run-time (keyfilter.h).
KEY_FILTER_MAPS(filter_mode, filter_pids, u32, MAX_FILTER_PIDS);
KEY_FILTER_MAPS(port_mode, filter_ports, u16, MAX_FILTER_PORTS);

// The map lookups stay here: BCC rewrites map calls only in the program's
// own text (see keyfilter.h).
static __always_inline int skip_tgid(u32 tgid)
{
    u32 zero = 0;
    u32 *mode = filter_mode.lookup(&zero);
    if (!mode || *mode == KF_ALL)
        return 0;
    return kf_skip(*mode, filter_pids.lookup(&tgid) != NULL);
}

static __always_inline int skip_port(u16 dport)
{
    u32 zero = 0;
    u32 *mode = port_mode.lookup(&zero);
    if (!mode || *mode == KF_ALL)
        return 0;
    return kf_skip(*mode, filter_ports.lookup(&dport) != NULL);
}

static __always_inline void submit(void *ctx, struct event *ev, u32 slot)
{
#ifdef USE_RINGBUF
    int err = events.ringbuf_output(ev, sizeof(*ev), 0);
#else
    int err = events.perf_submit(ctx, ev, sizeof(*ev));
#endif
    if (err) {
        // Counted here for both buffers, so the figure is exact per kind
        // (the perf buffer's own lost records do not say which kind).
        u64 *n = lost.lookup(&slot);
        if (n)
            *n += 1;
    }
}

#ifdef USE_TRACEPOINT

// Per attempt in SYN_SENT: who started it and when. The outcome usually
// fires in softirq context, where the current task is someone else.
struct attempt {
    u64 ts_ns;
    u32 pid;
    u32 uid;
    u32 reset;  // a reset arrived while in SYN_SENT (RESET_TP)
    u32 pad;
    char comm[TASK_COMM_LEN];
};
// LRU: an entry whose close was never seen cannot fill the map.
BPF_TABLE("lru_hash", u64, struct attempt, pending, MAX_PENDING);

static __always_inline void copy_addrs(struct event *ev, u16 family,
                                       const u8 *s4, const u8 *d4,
                                       const u8 *s6, const u8 *d6)
{
    if (family == FAM_INET) {
        __builtin_memcpy(ev->saddr, s4, 4);
        __builtin_memcpy(ev->daddr, d4, 4);
    } else {
        __builtin_memcpy(ev->saddr, s6, 16);
        __builtin_memcpy(ev->daddr, d6, 16);
    }
}

TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != PROTO_TCP)
        return 0;
    u16 family = args->family;
    if (family != FAM_INET && family != FAM_INET6)
        return 0;
    int old = args->oldstate, new = args->newstate;
    u64 sk = (u64)args->skaddr;
    struct event ev = {};

    if (old == ST_CLOSE && new == ST_SYN_SENT) {
        // connect(): runs in the connecting task.
        u64 pid_tgid = bpf_get_current_pid_tgid();
        u32 tgid = pid_tgid >> 32;
        if (skip_tgid(tgid) || skip_port(args->dport))
            return 0;
        struct attempt a = {};
        a.ts_ns = bpf_ktime_get_ns();
        a.pid = tgid;
        a.uid = (u32)bpf_get_current_uid_gid();
        bpf_get_current_comm(&a.comm, sizeof(a.comm));
        pending.update(&sk, &a);

        ev.ts_ns = a.ts_ns;
        ev.pid = a.pid;
        ev.uid = a.uid;
        __builtin_memcpy(ev.comm, a.comm, sizeof(ev.comm));
        ev.kind = EV_CONNECT;
    } else if (old == ST_SYN_SENT && (new == ST_ESTABLISHED || new == ST_CLOSE)) {
        // Filtered attempts were never stored, so the filter holds here too.
        struct attempt *a = pending.lookup(&sk);
        if (!a)
            return 0;
        ev.ts_ns = bpf_ktime_get_ns();
        ev.latency_ns = ev.ts_ns - a->ts_ns;
        ev.pid = a->pid;
        ev.uid = a->uid;
        __builtin_memcpy(ev.comm, a->comm, sizeof(ev.comm));
        if (new == ST_ESTABLISHED)
            ev.kind = EV_ESTABLISHED;
        else
            ev.kind = a->reset ? EV_REFUSED : EV_FAILED;
        pending.delete(&sk);
    } else {
        return 0;
    }
    ev.skaddr = sk;
    ev.family = family;
    ev.sport = args->sport;
    ev.dport = args->dport;
    copy_addrs(&ev, family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
    submit(args, &ev, ev.kind == EV_CONNECT ? 0 : 1);
    return 0;
}

#ifdef RESET_TP
// Fires in tcp_reset() just before the socket moves to CLOSE.
TRACEPOINT_PROBE(tcp, tcp_receive_reset)
{
    u64 sk = (u64)args->skaddr;
    struct attempt *a = pending.lookup(&sk);
    if (a)
        a->reset = 1;
    return 0;
}
#endif

#else  // kprobes: for kernels without the tracepoint (before 4.16)

// The kprobe rung reads struct sock, so it needs headers of the running
// kernel (the collector's feature check insists on that). It sees the
// attempt when connect() returns, not its outcome.
BPF_HASH(connecting, u32, struct sock *, MAX_PENDING);

static __always_inline int on_entry(struct sock *sk)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (skip_tgid(pid_tgid >> 32))
        return 0;
    u32 tid = (u32)pid_tgid;
    connecting.update(&tid, &sk);
    return 0;
}

int bpftop_tcp_v4_entry(struct pt_regs *ctx, struct sock *sk)
{
    return on_entry(sk);
}

int bpftop_tcp_v6_entry(struct pt_regs *ctx, struct sock *sk)
{
    return on_entry(sk);
}

static __always_inline int on_return(struct pt_regs *ctx, u16 family)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct sock **skp = connecting.lookup(&tid);
    if (!skp)
        return 0;
    struct sock *sk = *skp;
    connecting.delete(&tid);
    int ret = PT_REGS_RC(ctx);

    struct event ev = {};
    u16 dport = 0;
    bpf_probe_read_kernel(&dport, sizeof(dport), &sk->__sk_common.skc_dport);
    ev.dport = ntohs(dport);
    if (skip_port(ev.dport))
        return 0;
    ev.ts_ns = bpf_ktime_get_ns();
    ev.skaddr = (u64)sk;
    ev.pid = pid_tgid >> 32;
    ev.uid = (u32)bpf_get_current_uid_gid();
    bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
    ev.family = family;
    // A synchronous error (no route, no free port) is an attempt and its
    // outcome in one event.
    ev.kind = ret == 0 ? EV_CONNECT : EV_CONNECT_FAILED;
    u16 sport = 0;
    bpf_probe_read_kernel(&sport, sizeof(sport), &sk->__sk_common.skc_num);
    ev.sport = sport;
    if (family == FAM_INET) {
        bpf_probe_read_kernel(ev.saddr, 4, &sk->__sk_common.skc_rcv_saddr);
        bpf_probe_read_kernel(ev.daddr, 4, &sk->__sk_common.skc_daddr);
    } else {
        bpf_probe_read_kernel(ev.saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
        bpf_probe_read_kernel(ev.daddr, 16, &sk->__sk_common.skc_v6_daddr);
    }
    submit(ctx, &ev, 0);
    return 0;
}

int bpftop_tcp_v4_return(struct pt_regs *ctx)
{
    return on_return(ctx, FAM_INET);
}

int bpftop_tcp_v6_return(struct pt_regs *ctx)
{
    return on_return(ctx, FAM_INET6);
}

#endif
