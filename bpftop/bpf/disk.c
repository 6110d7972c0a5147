// bpftop disk collector: block I/O latency as log2 histograms in
// microseconds, per disk and per operation, with counts and bytes,
// aggregated in the kernel (like bcc's biolatency -D -F, both at once).
//
// Feature blocks, chosen by the loader with integer -D flags only:
//   USE_KPROBES     kprobes on the block layer's functions, reading struct
//                   request (needs headers of the running kernel); otherwise
//                   block tracepoints, whose arguments BCC builds from the
//                   live tracefs format (safe with any headers)
//   QUEUED          latency from the request's creation (block_io_start) or
//                   its insertion into the I/O scheduler (block_rq_insert),
//                   not from its issue to the driver (biolatency -Q)
//   START_IO_START  the QUEUED start hook is block:block_io_start (6.5+);
//                   otherwise block:block_rq_insert
//   USE_RAW_TP      raw tracepoints on the same block events, reading
//                   struct request at offsets user space took from the
//                   running kernel's BTF (RQ_Q, RQ_CMD_FLAGS, RQ_DATA_LEN,
//                   Q_DISK, GD_MAJOR, GD_FIRST_MINOR): the kernel skips a
//                   classic tracepoint program whenever any other such
//                   program (or a bpf() map call) is active on the CPU, as
//                   with a completion interrupt arriving then; a raw
//                   tracepoint program is skipped only when it interrupts
//                   itself. The request pointer is the in-flight key.
// Sizes: NSLOTS, MAX_INFLIGHT, MAX_STAT_KEYS, MAX_FILTER_DEVS.
// User space counts the requests in flight by walking ``start``.
//
// Tracepoint arguments carry no request pointer, so a completion is matched
// to its start by (disk, operation, sector): see record_start/record_done.
// Counters are cumulative and never cleared from user space: the reader
// takes differences, so no count is lost between a read and a reset.

#include <uapi/linux/ptrace.h>
#ifdef USE_KPROBES
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#endif

#include "common.h"

#define OP_READ 0
#define OP_WRITE 1
#define OP_FLUSH 2
#define OP_DISCARD 3
#define OP_OTHER 4

// The histogram index is masked with NSLOTS - 1 (see record_done).
_Static_assert((NSLOTS & (NSLOTS - 1)) == 0, "NSLOTS must be a power of two");

struct start_key {
    u32 dev;
    u32 op;
    u64 sector;
};

struct start_val {
    u64 ts;
    u32 nr_left;  // sectors still to complete (partial completions)
    u32 count;    // requests in flight at this key (rare: same sector twice)
    u32 issued;   // USE_RAW_TP with QUEUED: the request reached the driver
    u32 _pad;
};

// In-flight requests. LRU so that starts whose completion is never seen
// (a device removed, a hook detached mid-flight) cannot fill it.
BPF_TABLE("lru_hash", struct start_key, struct start_val, start, MAX_INFLIGHT);

struct stat_key {
    u32 dev;
    u32 op;
};

struct io_stat {
    u64 ios;        // completed requests
    u64 bytes;      // completed bytes (partial completions included)
    u64 timed;      // completions whose start was seen: the histogram's sum
    u64 total_ns;   // their summed latency
    u64 max_ns[2];  // largest latency in the interval of epoch max_epoch[i]
    u64 max_epoch[2];
    u64 slots[NSLOTS];  // slot 0: [0,1) us; slot k: [2^(k-1), 2^k) us
};

BPF_PERCPU_HASH(stats, struct stat_key, struct io_stat, MAX_STAT_KEYS);

// Run-time controls, written by user space (never recompiled):
// ctl[0] disk filter mode: 0 all, 1 only filter_devs, 2 all but filter_devs
// ctl[1] operation mask: bit (1 << op) set = counted; 0 = every operation
// ctl[2] epoch: bumped by the reader at every read, so the max of the
//        interval that just ended stays apart from the next one's
// ctl[3] the oldest start a completion may be matched with, in ns: an
//        entry older than that lost its completion (the kernel skipped our
//        program) and its sector or request has been reused since
BPF_ARRAY(ctl, u64, 4);
BPF_HASH(filter_devs, u32, u8, MAX_FILTER_DEVS);
// Per disk, a time (bpf_ktime_get_ns) before which every request the
// device was given had completed, by the device's own in-flight count
// that user space reads: a start older than that is stale.
BPF_HASH(dev_idle, u32, u64, MAX_FILTER_DEVS);
// Stale starts found: [0] a completion met one (counted, not timed),
// [1] a new request replaced one at the same key.
BPF_PERCPU_ARRAY(stale, u64, 2);

static __always_inline void count_stale(u32 i)
{
    u64 *n = stale.lookup(&i);
    if (n)
        *n += 1;
}

static __always_inline int is_stale(u32 dev, u64 ts, u64 now)
{
    u32 bound_i = 3;
    u64 *bound = ctl.lookup(&bound_i);
    if (bound && *bound && now > ts && now - ts > *bound)
        return 1;
#ifndef QUEUED
    u64 *idle = dev_idle.lookup(&dev);
    if (idle && ts < *idle)
        return 1;
#endif
    return 0;
}

static __always_inline u64 ctl_get(u32 i)
{
    u64 *v = ctl.lookup(&i);
    return v ? *v : 0;
}

static __always_inline int skip(u32 dev, u32 op)
{
    u64 mask = ctl_get(1);
    if (mask && !(mask & (1ULL << op)))
        return 1;
    // The disk filter's mode lives in ctl[0] beside the other controls
    // (keyfilter.h's modes); the lookup stays here, as BCC needs.
    u64 mode = ctl_get(0);
    if (mode == KF_ALL)
        return 0;
    return kf_skip(mode, filter_devs.lookup(&dev) != NULL);
}

// rwbs as blk_fill_rwbs writes it: an optional 'F' (preflush), then the
// operation (W, R, D, DE, F for a flush, N for anything else), then flags
// (F for FUA, A, S, M ...). A write without data is an empty preflush from
// fsync and the like: counted as a flush.
static __always_inline u32 op_of(char c0, char c1, u32 nr_sector)
{
    char c = c0;
    if (c0 == 'F' && (c1 == 'W' || c1 == 'R' || c1 == 'D' || c1 == 'N'))
        c = c1;
    switch (c) {
    case 'R':
        return OP_READ;
    case 'W':
        return nr_sector ? OP_WRITE : OP_FLUSH;
    case 'F':
        return OP_FLUSH;
    case 'D':
        return OP_DISCARD;
    default:
        return OP_OTHER;
    }
}

static __always_inline struct io_stat *stat_for(u32 dev, u32 op)
{
    struct stat_key k = {.dev = dev, .op = op};
    struct io_stat zero = {};
    return stats.lookup_or_try_init(&k, &zero);
}

static __always_inline u32 log2_us(u64 us)
{
    // slot 0 holds [0,1) us; slot k holds [2^(k-1), 2^k)
    if (us == 0)
        return 0;
    u32 slot = bpf_log2l(us);  // floor(log2(us)) + 1
    return slot < NSLOTS ? slot : NSLOTS - 1;
}

// A request starts (issue, or queue entry with QUEUED). ``if_absent``: a
// second start hook for the same request (issue after block_io_start) only
// fills in requests the first hook did not see (flush machinery requests,
// requests issued without going through the scheduler).
static __always_inline void record_start(u32 dev, u64 sector, u32 nr, u32 op, int if_absent)
{
    if (skip(dev, op))
        return;
    struct start_key k = {.dev = dev, .op = op, .sector = sector};
    struct start_val *v = start.lookup(&k);
    if (v) {
        if (if_absent) {
            // The request is final now: merges after its creation grew it.
            if (v->count == 1 && nr > v->nr_left)
                v->nr_left = nr;
            return;
        }
        // Another request at the same place is already in flight (two
        // flushes, two reads of one block): keep the older time and count.
        __sync_fetch_and_add(&v->count, 1);
    } else {
        struct start_val nv = {.ts = bpf_ktime_get_ns(), .nr_left = nr, .count = 1};
        if (start.insert(&k, &nv) != 0) {
            // Another CPU inserted the same key in between.
            v = start.lookup(&k);
            if (!v)
                return;
            __sync_fetch_and_add(&v->count, 1);
        }
    }
}

static __always_inline void account(struct io_stat *s, u64 delta);

// ``nr`` sectors of a request completed. Partial completions (the driver
// finished part of the request) move the in-flight entry past the finished
// part; the I/O counts once, when the last part completes.
static __always_inline void record_done(u32 dev, u64 sector, u32 nr, u32 op)
{
    if (skip(dev, op))
        return;
    u64 now = bpf_ktime_get_ns();
    struct start_key k = {.dev = dev, .op = op, .sector = sector};
    struct start_val *v = start.lookup(&k);
    struct io_stat *s = stat_for(dev, op);
    if (!s)
        return;
    s->bytes += (u64)nr << 9;
    if (v && v->count == 1 && nr && nr < v->nr_left) {
        struct start_key rest = k;
        rest.sector += nr;
        struct start_val nv = {.ts = v->ts, .nr_left = v->nr_left - nr, .count = 1};
        start.update(&rest, &nv);
        start.delete(&k);
        return;
    }
    if (!v) {
        // Started before we attached, or a data-less request the flush
        // machinery completes without issuing it (the device's flush is a
        // separate request, counted on its own): nothing reached the device
        // for it, so it is not an I/O of the device.
        if (nr == 0)
            return;
        s->ios++;
        return;
    }
    u64 ts = v->ts;
    if (v->count > 1)
        __sync_fetch_and_add(&v->count, -1);
    else
        start.delete(&k);
    if (is_stale(dev, ts, now)) {
        count_stale(0);
        s->ios++;
        return;
    }
    account(s, now > ts ? now - ts : 0);
}

static __always_inline void account(struct io_stat *s, u64 delta)
{
    s->ios++;
    s->timed++;
    s->total_ns += delta;
    u32 slot = log2_us(delta / 1000);
    // Older verifiers (Debian 12's 6.1) do not carry the bound that
    // log2_us implies to this access ("R2 unbounded memory access"), and
    // clang drops a check it can prove redundant: hide the value from the
    // optimiser, then mask it, which every verifier follows.
    asm volatile("" : "+r"(slot));
    s->slots[slot & (NSLOTS - 1)]++;
    u64 epoch = ctl_get(2);
    u32 e = epoch & 1;
    if (s->max_epoch[e] != epoch) {
        s->max_epoch[e] = epoch;
        s->max_ns[e] = delta;
    } else if (delta > s->max_ns[e]) {
        s->max_ns[e] = delta;
    }
}

// The request went back to the queue and will be issued again: its issue
// time is void. (With QUEUED the queue time goes on: keep the entry.)
static __always_inline void record_requeue(u32 dev, u64 sector, u32 op)
{
#ifndef QUEUED
    if (skip(dev, op))
        return;
    struct start_key k = {.dev = dev, .op = op, .sector = sector};
    struct start_val *v = start.lookup(&k);
    if (!v)
        return;
    if (v->count > 1)
        __sync_fetch_and_add(&v->count, -1);
    else
        start.delete(&k);
#endif
}

#if defined(USE_RAW_TP)

// Raw tracepoints: the first argument is the struct request. Named
// functions, attached by user space to the events the rung names.
static __always_inline u64 rd64(const char *p)
{
    u64 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), p);
    return v;
}

static __always_inline u32 rd32(const char *p)
{
    u32 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), p);
    return v;
}

struct rq_facts {
    u32 dev;
    u32 op;
    u32 data_len;  // bytes not yet completed
};

// REQ_OP_* are the low 8 bits of cmd_flags; these values have held since
// 4.10 (read 0, write 1, flush 2, discard 3, secure erase 5).
static __always_inline void rq_read(const char *rq, struct rq_facts *f)
{
    const char *q = (const char *)rd64(rq + RQ_Q);
    const char *disk = q ? (const char *)rd64(q + Q_DISK) : 0;
    f->dev = 0;
    if (disk)
        f->dev = rd32(disk + GD_MAJOR) << 20 | rd32(disk + GD_FIRST_MINOR);
    f->data_len = rd32(rq + RQ_DATA_LEN);
    u32 opf = rd32(rq + RQ_CMD_FLAGS) & 0xff;
    if (opf == 0)
        f->op = OP_READ;
    else if (opf == 1)
        f->op = f->data_len ? OP_WRITE : OP_FLUSH;
    else if (opf == 2)
        f->op = OP_FLUSH;
    else if (opf == 3 || opf == 5)
        f->op = OP_DISCARD;
    else
        f->op = OP_OTHER;
}

// ``is_issue``: the driver is given the request now (block_rq_issue);
// ``if_absent``: only when no earlier hook (its creation) recorded it.
static __always_inline void rq_start(const char *rq, int if_absent, int is_issue)
{
    struct rq_facts f;
    rq_read(rq, &f);
    if (skip(f.dev, f.op))
        return;
    struct start_key k = {.dev = f.dev, .op = f.op, .sector = (u64)rq};
    struct start_val *v = start.lookup(&k);
    if (v) {
        if (if_absent) {
            v->issued = 1;
            return;
        }
        // The same request started again without its completion seen:
        // that completion never reached this program.
        count_stale(1);
    }
    struct start_val nv = {.ts = bpf_ktime_get_ns(), .nr_left = f.data_len >> 9, .count = 1, .issued = is_issue};
    start.update(&k, &nv);
}

// ``nr_bytes`` of the request completed; it is done when that covers what
// was left (partial completions come first with less).
static __always_inline void rq_done(const char *rq, u64 nr_bytes)
{
    struct rq_facts f;
    rq_read(rq, &f);
    if (skip(f.dev, f.op))
        return;
    struct io_stat *s = stat_for(f.dev, f.op);
    if (!s)
        return;
    s->bytes += nr_bytes;
    if (nr_bytes < f.data_len)
        return;
    u64 now = bpf_ktime_get_ns();
    struct start_key k = {.dev = f.dev, .op = f.op, .sector = (u64)rq};
    struct start_val *v = start.lookup(&k);
    if (!v) {
        // As in record_done: an empty flush never sent to the device.
        if (nr_bytes == 0)
            return;
        s->ios++;
        return;
    }
    u64 ts = v->ts;
    u32 issued = v->issued;
    start.delete(&k);
    // An empty flush the flush machinery finished without the driver
    // (with QUEUED its creation was seen): not an I/O of the device.
    if (!issued && nr_bytes == 0)
        return;
    if (is_stale(f.dev, ts, now)) {
        count_stale(0);
        s->ios++;
        return;
    }
    account(s, now > ts ? now - ts : 0);
}

int bpftop_disk_raw_issue(struct bpf_raw_tracepoint_args *ctx)
{
#ifdef QUEUED
    rq_start((const char *)ctx->args[0], 1, 1);
#else
    rq_start((const char *)ctx->args[0], 0, 1);
#endif
    return 0;
}

int bpftop_disk_raw_done(struct bpf_raw_tracepoint_args *ctx)
{
    rq_done((const char *)ctx->args[0], (u64)(u32)ctx->args[2]);
    return 0;
}

#ifdef QUEUED
int bpftop_disk_raw_queue(struct bpf_raw_tracepoint_args *ctx)
{
    rq_start((const char *)ctx->args[0], 0, 0);
    return 0;
}
#else
int bpftop_disk_raw_requeue(struct bpf_raw_tracepoint_args *ctx)
{
    struct rq_facts f;
    const char *rq = (const char *)ctx->args[0];
    rq_read(rq, &f);
    struct start_key k = {.dev = f.dev, .op = f.op, .sector = (u64)rq};
    start.delete(&k);
    return 0;
}
#endif

#elif !defined(USE_KPROBES)

#define TP_OP(a) op_of((a)->rwbs[0], (a)->rwbs[1], (a)->nr_sector)

TRACEPOINT_PROBE(block, block_rq_issue)
{
#ifdef QUEUED
    record_start(args->dev, args->sector, args->nr_sector, TP_OP(args), 1);
#else
    record_start(args->dev, args->sector, args->nr_sector, TP_OP(args), 0);
#endif
    return 0;
}

TRACEPOINT_PROBE(block, block_rq_complete)
{
    record_done(args->dev, args->sector, args->nr_sector, TP_OP(args));
    return 0;
}

#ifdef QUEUED
#ifdef START_IO_START
TRACEPOINT_PROBE(block, block_io_start)
{
    record_start(args->dev, args->sector, args->nr_sector, TP_OP(args), 0);
    return 0;
}
#else
TRACEPOINT_PROBE(block, block_rq_insert)
{
    record_start(args->dev, args->sector, args->nr_sector, TP_OP(args), 0);
    return 0;
}
#endif
#else
TRACEPOINT_PROBE(block, block_rq_requeue)
{
    record_requeue(args->dev, args->sector, TP_OP(args));
    return 0;
}
#endif

#else  // USE_KPROBES: for kernels whose tracepoints lack what is needed

// Reads struct request: only loaded when the headers match the running
// kernel (the collector's feature check says so otherwise). The request
// pointer would be a better key, but keeping one key scheme for both rungs
// keeps the reader and its tests the same.

static __always_inline u32 kp_dev(struct request *req)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 17, 0)
    struct gendisk *disk = req->q->disk;
#else
    struct gendisk *disk = req->rq_disk;
#endif
    if (!disk)
        return 0;
    return (u32)(disk->major << 20 | disk->first_minor);
}

static __always_inline u32 kp_op(struct request *req, u32 nr)
{
    u32 opf = req->cmd_flags;
    switch (opf & REQ_OP_MASK) {
    case REQ_OP_READ:
        return OP_READ;
    case REQ_OP_WRITE:
        return nr ? OP_WRITE : OP_FLUSH;
    case REQ_OP_FLUSH:
        return OP_FLUSH;
    case REQ_OP_DISCARD:
    case REQ_OP_SECURE_ERASE:
        return OP_DISCARD;
    default:
        return OP_OTHER;
    }
}

static __always_inline void kp_start(struct request *req, int if_absent)
{
    u32 nr = req->__data_len >> 9;
    record_start(kp_dev(req), req->__sector, nr, kp_op(req, nr), if_absent);
}

int bpftop_disk_kp_issue(struct pt_regs *ctx, struct request *req)
{
#ifdef QUEUED
    kp_start(req, 1);
#else
    kp_start(req, 0);
#endif
    return 0;
}

#ifdef QUEUED
int bpftop_disk_kp_queue(struct pt_regs *ctx, struct request *req)
{
    kp_start(req, 0);
    return 0;
}
#endif

// blk_account_io_done runs once per request after its last part completed:
// __data_len is 0 by then, so the size comes from the start entry, and the
// sector is where the last part began.
int bpftop_disk_kp_done(struct pt_regs *ctx, struct request *req)
{
    u32 dev = kp_dev(req);
    u64 sector = req->__sector;
    u32 nr = 0;
    struct start_key k = {.dev = dev, .sector = sector};
    // The operation cannot be told from the request alone for an empty
    // write; try a flush first, then what the flags say.
    u32 op = kp_op(req, 1);
    k.op = op;
    struct start_val *v = start.lookup(&k);
    if (!v && op == OP_WRITE) {
        k.op = OP_FLUSH;
        v = start.lookup(&k);
        if (v)
            op = OP_FLUSH;
    }
    if (v)
        nr = v->nr_left;
    record_done(dev, sector, nr, op);
    return 0;
}

#endif
