// bpftop tcp collector: outgoing TCP connect attempts and their outcome
// (established with latency, refused, failed), aggregated in the kernel per
// (process, uid, comm, destination) in the hash ``agg``. User space reads it
// once an interval. Only a rate-limited sample of the attempts (and the
// outcomes of those) goes to user space as events, for the event log; what
// the limit kept back is counted per key (attempts - sent).
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
// Sizes: MAX_PENDING, MAX_AGG, NSLOTS, MAX_FILTER_PIDS, MAX_FILTER_PORTS,
// RINGBUF_PAGES. Event rate limit, per CPU (GCRA): EVENT_GAP_NS between
// events, EVENT_TAU_NS of burst tolerance.
//
// The tracepoint rung never dereferences a kernel struct: skaddr is used as
// an opaque map key only, so headers of another kernel version are safe.
//
// Counting generations: user space restarts the counts (a filter changed)
// by bumping ctl[0]. Every aggregate key carries the generation it was
// counted in, so user space reads only the current one's keys and deletes
// the older ones without racing a writer; an outcome whose attempt was
// counted in an older generation is an orphan. Per-CPU counters and the
// overflow buckets have two copies (the generation's parity): user space
// zeroes the next one before it bumps the generation.

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

// The histogram index is masked with NSLOTS - 1 (see account).
_Static_assert((NSLOTS & (NSLOTS - 1)) == 0, "NSLOTS must be a power of two");

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

// The aggregate's key and value (collectors/tcp_counts.py, KEY and VALUE):
// keep both in step. 48 and 8 * (9 + NSLOTS) bytes, no padding.
struct agg_key {
    u32 tgid;
    u32 uid;
    u32 gen;      // the counting generation (ctl[0]) of the attempt
    u16 family;   // AF_INET or AF_INET6
    u16 dport;    // host order
    u8 daddr[16]; // first 4 bytes for AF_INET, the rest zero
    char comm[TASK_COMM_LEN];
};

struct agg_val {
    u64 attempts;
    u64 sent;         // attempts the rate limit let out as an event
    u64 established;
    u64 refused;
    u64 failed;
    u64 timed;        // outcomes that carry a latency (lat_ns, slots)
    u64 lat_ns;
    u64 first_ns;     // the key's first attempt
    u64 last_ns;      // its latest attempt (which comm/uid a pid has now)
    u64 slots[NSLOTS];  // log2 us: slot 0 [0,1) us, slot k [2^(k-1), 2^k)
};

// Plain hash, values updated with atomic adds: one copy per key however
// many CPUs count into it.
BPF_HASH(agg, struct agg_key, struct agg_val, MAX_AGG);
// Attempts that found ``agg`` full: counted per (generation parity, IP
// version) so that totals, outcomes and latency stay exact.
BPF_PERCPU_ARRAY(spill, struct agg_val, 4);
// A zeroed value to insert from (too big for the stack beside the rest).
BPF_PERCPU_ARRAY(zero_val, struct agg_val, 1);

// ctl[0]: the counting generation, written by user space.
BPF_ARRAY(ctl, u64, 1);

// Per CPU, per generation parity: [0] orphan outcomes, [1] attempt events
// that found the buffer full, [2] outcome events that found it full.
#define C_ORPHAN 0
#define C_LOST_ATTEMPT 1
#define C_LOST_OUTCOME 2
#define NCOUNTS 3
BPF_PERCPU_ARRAY(counts, u64, 2 * NCOUNTS);

// Per CPU: the rate limit's theoretical arrival time (GCRA).
BPF_PERCPU_ARRAY(bucket, u64, 1);

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

static __always_inline u32 current_gen(void)
{
    u32 zero = 0;
    u64 *g = ctl.lookup(&zero);
    return g ? (u32)*g : 0;
}

static __always_inline void bump(u32 gen, u32 what)
{
    u32 i = (gen & 1) * NCOUNTS + what;
    u64 *n = counts.lookup(&i);
    if (n)
        *n += 1;
}

// Whether this CPU may send one more attempt event now.
static __always_inline int take_token(u64 now)
{
    u32 zero = 0;
    u64 *tat = bucket.lookup(&zero);
    if (!tat)
        return 0;
    u64 t = *tat > now ? *tat : now;
    if (t - now > EVENT_TAU_NS)
        return 0;
    *tat = t + EVENT_GAP_NS;
    return 1;
}

// 0 when the event went out; otherwise it is counted as lost (per kind,
// exact for both buffers: the perf buffer's lost records do not say which
// kind they were).
static __always_inline int submit(void *ctx, struct event *ev, u32 gen, u32 what)
{
#ifdef USE_RINGBUF
    int err = events.ringbuf_output(ev, sizeof(*ev), 0);
#else
    int err = events.perf_submit(ctx, ev, sizeof(*ev));
#endif
    if (err)
        bump(gen, what);
    return err;
}

// The key's counters; NULL when the map is full (the caller spills).
static __always_inline struct agg_val *agg_for(struct agg_key *k, u64 now)
{
    struct agg_val *v = agg.lookup(k);
    if (v)
        return v;
    u32 zero = 0;
    struct agg_val *z = zero_val.lookup(&zero);
    if (!z)
        return NULL;
    // Another CPU may insert the same key in between: then the lookup
    // below finds its entry.
    agg.insert(k, z);
    v = agg.lookup(k);
    if (v && v->first_ns == 0)
        v->first_ns = now;
    return v;
}

static __always_inline struct agg_val *spill_for(u32 gen, u16 family)
{
    u32 i = (gen & 1) * 2 + (family == FAM_INET6 ? 1 : 0);
    return spill.lookup(&i);
}

static __always_inline u32 log2_us(u64 us)
{
    // slot 0 holds [0,1) us; slot k holds [2^(k-1), 2^k)
    if (us == 0)
        return 0;
    u32 slot = bpf_log2l(us);  // floor(log2(us)) + 1
    return slot < NSLOTS ? slot : NSLOTS - 1;
}

// Atomic adds: several CPUs count into one key of ``agg`` at once (a
// spill entry is per CPU, where they cost the same).
static __always_inline void count_attempt(struct agg_val *v, u64 now, int sent)
{
    __sync_fetch_and_add(&v->attempts, 1);
    if (sent)
        __sync_fetch_and_add(&v->sent, 1);
    v->last_ns = now;
}

static __always_inline void count_outcome(struct agg_val *v, int kind, u64 lat_ns, int timed)
{
    if (kind == EV_ESTABLISHED)
        __sync_fetch_and_add(&v->established, 1);
    else if (kind == EV_REFUSED)
        __sync_fetch_and_add(&v->refused, 1);
    else
        __sync_fetch_and_add(&v->failed, 1);
    if (!timed)
        return;
    __sync_fetch_and_add(&v->timed, 1);
    __sync_fetch_and_add(&v->lat_ns, lat_ns);
    u32 slot = log2_us(lat_ns / 1000);
    // Older verifiers (Debian 12's 6.1) do not carry the bound that
    // log2_us implies to this access ("R2 unbounded memory access"), and
    // clang drops a check it can prove redundant: hide the value from the
    // optimiser, then mask it, which every verifier follows.
    asm volatile("" : "+r"(slot));
    __sync_fetch_and_add(&v->slots[slot & (NSLOTS - 1)], 1);
}

#ifdef USE_TRACEPOINT

#define A_SPILLED 1  // counted in ``spill``, not in ``agg``
#define A_STREAMED 2 // its event went out: so does its outcome's

// Per attempt in SYN_SENT: when, and where it was counted. The outcome
// usually fires in softirq context, where the current task is someone else.
struct attempt {
    u64 ts_ns;
    struct agg_key key;
    u32 flags;  // A_*
    u32 reset;  // a reset arrived while in SYN_SENT (RESET_TP)
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
        u64 now = bpf_ktime_get_ns();
        struct attempt a = {};
        a.ts_ns = now;
        a.key.tgid = tgid;
        a.key.uid = (u32)bpf_get_current_uid_gid();
        a.key.gen = current_gen();
        a.key.family = family;
        a.key.dport = args->dport;
        if (family == FAM_INET)
            __builtin_memcpy(a.key.daddr, args->daddr, 4);
        else
            __builtin_memcpy(a.key.daddr, args->daddr_v6, 16);
        bpf_get_current_comm(&a.key.comm, sizeof(a.key.comm));

        int sent = take_token(now);
        struct agg_val *v = agg_for(&a.key, now);
        if (!v) {
            v = spill_for(a.key.gen, family);
            a.flags |= A_SPILLED;
        }
        if (v)
            count_attempt(v, now, sent);
        if (sent) {
            ev.ts_ns = now;
            ev.skaddr = sk;
            ev.pid = tgid;
            ev.uid = a.key.uid;
            __builtin_memcpy(ev.comm, a.key.comm, sizeof(ev.comm));
            ev.kind = EV_CONNECT;
            ev.family = family;
            ev.sport = args->sport;
            ev.dport = args->dport;
            copy_addrs(&ev, family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
            if (submit(args, &ev, a.key.gen, C_LOST_ATTEMPT) == 0)
                a.flags |= A_STREAMED;
        }
        pending.update(&sk, &a);
        return 0;
    }
    if (old != ST_SYN_SENT || (new != ST_ESTABLISHED && new != ST_CLOSE))
        return 0;

    // The outcome. Filtered attempts were never stored, so the filter
    // holds here too. Copy before the delete: the entry's memory is reused.
    struct attempt *p = pending.lookup(&sk);
    if (!p)
        return 0;
    struct attempt a = *p;
    pending.delete(&sk);
    u64 now = bpf_ktime_get_ns();
    u64 lat = now > a.ts_ns ? now - a.ts_ns : 0;
    int kind = new == ST_ESTABLISHED ? EV_ESTABLISHED : (a.reset ? EV_REFUSED : EV_FAILED);
    u32 gen = current_gen();
    if (a.key.gen != gen) {
        // Its attempt was counted before the counts restarted.
        bump(gen, C_ORPHAN);
        return 0;
    }
    struct agg_val *v = (a.flags & A_SPILLED) ? spill_for(gen, family) : agg.lookup(&a.key);
    if (!v) {
        bump(gen, C_ORPHAN);
        return 0;
    }
    count_outcome(v, kind, lat, 1);
    if (!(a.flags & A_STREAMED))
        return 0;
    ev.ts_ns = now;
    ev.skaddr = sk;
    ev.latency_ns = lat;
    ev.pid = a.key.tgid;
    ev.uid = a.key.uid;
    __builtin_memcpy(ev.comm, a.key.comm, sizeof(ev.comm));
    ev.kind = kind;
    ev.family = family;
    ev.sport = args->sport;
    ev.dport = args->dport;
    copy_addrs(&ev, family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
    submit(args, &ev, gen, C_LOST_OUTCOME);
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

    u16 dport = 0;
    bpf_probe_read_kernel(&dport, sizeof(dport), &sk->__sk_common.skc_dport);
    dport = ntohs(dport);
    if (skip_port(dport))
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct agg_key k = {};
    k.tgid = pid_tgid >> 32;
    k.uid = (u32)bpf_get_current_uid_gid();
    k.gen = current_gen();
    k.family = family;
    k.dport = dport;
    if (family == FAM_INET)
        bpf_probe_read_kernel(k.daddr, 4, &sk->__sk_common.skc_daddr);
    else
        bpf_probe_read_kernel(k.daddr, 16, &sk->__sk_common.skc_v6_daddr);
    bpf_get_current_comm(&k.comm, sizeof(k.comm));

    int sent = take_token(now);
    struct agg_val *v = agg_for(&k, now);
    if (!v)
        v = spill_for(k.gen, family);
    if (v) {
        count_attempt(v, now, sent);
        // A synchronous error (no route, no free port) is an attempt and
        // its outcome at once, without a latency.
        if (ret != 0)
            count_outcome(v, EV_CONNECT_FAILED, 0, 0);
    }
    if (!sent)
        return 0;
    struct event ev = {};
    ev.ts_ns = now;
    ev.skaddr = (u64)sk;
    ev.pid = k.tgid;
    ev.uid = k.uid;
    __builtin_memcpy(ev.comm, k.comm, sizeof(ev.comm));
    ev.family = family;
    ev.kind = ret == 0 ? EV_CONNECT : EV_CONNECT_FAILED;
    ev.dport = dport;
    u16 sport = 0;
    bpf_probe_read_kernel(&sport, sizeof(sport), &sk->__sk_common.skc_num);
    ev.sport = sport;
    __builtin_memcpy(ev.daddr, k.daddr, sizeof(ev.daddr));
    if (family == FAM_INET)
        bpf_probe_read_kernel(ev.saddr, 4, &sk->__sk_common.skc_rcv_saddr);
    else
        bpf_probe_read_kernel(ev.saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
    submit(ctx, &ev, k.gen, C_LOST_ATTEMPT);
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
