// bpftop cache collector: page-cache accesses, pages added (misses) and
// pages dirtied, per process, like bcc's cachetop and cachestat.
//
// One of three hook sets, chosen by the loader with integer -D flags only:
//   HOOK_KPROBE   kprobes on the classic functions; user space attaches
//                 bpftop_ca_* to whichever names this kernel has
//   HOOK_FENTRY   fentry on the same functions; ACCESS_FN, ADD_FN and
//                 DIRTY_FN (1 = folio_* name, 2 = the older *_page* name)
//                 pick them, since a KFUNC_PROBE's name is its target
//   (neither)     tracepoints: filemap and writeback, see below
//   DIRTY_VIA_TP  kprobe/fentry rungs: the dirtied-page function is inlined
//                 (folio_account_dirtied on 6.x), so count its tracepoint,
//                 writeback_dirty_folio, which fires inside it, instead
// Tracepoint-rung options:
//   ADD_HAS_ORDER   mm_filemap_add_to_page_cache has an `order` field
//                   (folios); without it every add is one page
//   TRACK_MMAP      count mm_filemap_fault / mm_filemap_map_pages too
//   MMAP_RSS        count pages mapped from files instead, from the growth
//                   of the process's MM_FILEPAGES in kmem:rss_stat (exact:
//                   a fault on a large folio maps all of it at once, and
//                   fault-around maps only what is cached; the filemap
//                   events say neither)
//   DIRTY_TP_FOLIO  writeback_dirty_folio (1) or writeback_dirty_page (0)
//   READ_RAW        mm_filemap_get_pages as a raw tracepoint (its arguments,
//                   checked in the kernel's BTF, are the mapping and the
//                   page range); otherwise the classic tracepoint
//   DIRTY_RAW       writeback_dirty_folio as a raw tracepoint, its folio's
//                   size read from the folio itself at offsets user space
//                   took from the kernel's BTF: FOLIO_FLAGS, PG_HEAD_BIT,
//                   FOLIO_ORDER (FOLIO_ORDER_BYTE: a u8 there, else the low
//                   byte of an unsigned long); otherwise the size
//                   remembered from the folio's add, which misses folios
//                   cached before bpftop started
// Sizes: MAX_PROCS, MAX_THREADS, MAX_FILTER_PIDS, MAX_LARGE_FOLIOS.
//
// Counters are cumulative and never cleared from user space: the reader
// takes differences, so no count is lost between a read and a reset.
// Only tracepoint arguments and helper results are read: no kernel struct
// is dereferenced (the headers may be another kernel's).

#include <uapi/linux/ptrace.h>

#include "common.h"

struct cache_counts {
    u64 accesses;        // pages read (tracepoints) or mark_page_accessed calls
    u64 buffer_dirties;  // mark_buffer_dirty calls (kprobe/fentry only)
    u64 added;           // pages added to the page cache
    u64 dirtied;         // pages that went from clean to dirty
};

struct proc_val {
    struct cache_counts c;
    u32 uid;
    u32 _pad;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(proc_stats, u32, struct proc_val, MAX_PROCS);
// Events that could not be attributed: the process map was full.
BPF_PERCPU_ARRAY(untracked, u64, 1);

// A hash lookup, an atomic add and a fresh name on every event cost more
// than the rest of a cached read's program, so each CPU keeps a run: the
// process whose events it last counted and their counts, moved into
// proc_stats only when the CPU counts another process's (or the process
// execs). `switches` bumps at each move, which lets user space read the
// hash and the runs consistently (collectors/cache.py). `total` is every
// count that passed the filter, including processes the hash had no room
// for: the system totals.
struct proc_cache {
    u32 tgid;  // 0: no run
    u32 switches;
    struct cache_counts pending;
    struct cache_counts total;
};
BPF_PERCPU_ARRAY(proc_cache, struct proc_cache, 1);

// Process filter, changed at run time by user space without recompiling
// (keyfilter.h): everyone, only the tgids in filter_pids, or all but them.
KEY_FILTER_MAPS(filter_mode, filter_pids, u32, MAX_FILTER_PIDS);

enum { F_ACCESS, F_BUFDIRTY, F_ADDED, F_DIRTIED };

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

// Per-CPU counts: no other writer, no atomic needed.
static __always_inline void add_field(struct cache_counts *c, int field, u64 n)
{
    if (field == F_ACCESS)
        c->accesses += n;
    else if (field == F_BUFDIRTY)
        c->buffer_dirties += n;
    else if (field == F_ADDED)
        c->added += n;
    else
        c->dirtied += n;
}

// Moves this CPU's run into proc_stats (other CPUs may add to the same
// process at once: atomics) and ends it.
static __always_inline void end_run(struct proc_cache *c)
{
    struct cache_counts *q = &c->pending;
    u64 sum = q->accesses + q->buffer_dirties + q->added + q->dirtied;
    if (c->tgid && sum) {
        u32 tgid = c->tgid;
        // No entry: user space dropped the process after it exited and
        // its last counts, this run's included, were reported.
        struct proc_val *p = proc_stats.lookup(&tgid);
        if (p) {
            __sync_fetch_and_add(&p->c.accesses, q->accesses);
            __sync_fetch_and_add(&p->c.buffer_dirties, q->buffer_dirties);
            __sync_fetch_and_add(&p->c.added, q->added);
            __sync_fetch_and_add(&p->c.dirtied, q->dirtied);
        }
    }
    q->accesses = 0;
    q->buffer_dirties = 0;
    q->added = 0;
    q->dirtied = 0;
    c->tgid = 0;
    c->switches++;
}

// Count n pages (or calls) of one kind for the current process; the
// caller has already applied the filter.
static __always_inline void count(u32 tgid, int field, u64 n)
{
    u32 zero = 0;
    if (!n)
        return;
    struct proc_cache *c = proc_cache.lookup(&zero);
    if (!c)
        return;
    add_field(&c->total, field, n);
    if (c->tgid != tgid) {
        end_run(c);
        struct proc_val *p = proc_stats.lookup(&tgid);
        if (!p) {
            struct proc_val init = {};
            proc_stats.insert(&tgid, &init);
            p = proc_stats.lookup(&tgid);
            if (!p) {
                u64 *u = untracked.lookup(&zero);
                if (u)
                    *u += 1;
                return;
            }
        }
        // The name and user as a run starts; exec ends a run (below).
        p->uid = (u32)bpf_get_current_uid_gid();
        bpf_get_current_comm(&p->comm, sizeof(p->comm));
        c->tgid = tgid;
    }
    add_field(&c->pending, field, n);
}

// A process that execs has a new name: its run on this CPU ends, so the
// next event starts one and takes the name (a forked shell that execs
// `cat` touches the cache, reading the binary, under its old name).
TRACEPOINT_PROBE(sched, sched_process_exec)
{
    u32 zero = 0;
    struct proc_cache *c = proc_cache.lookup(&zero);
    if (c && c->tgid == (u32)(bpf_get_current_pid_tgid() >> 32))
        end_run(c);
    return 0;
}

static __always_inline void count_current(int field, u64 n)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (skip_tgid(tgid))
        return;
    count(tgid, field, n);
}

#if defined(HOOK_KPROBE)

// One call = one count, as cachetop counts (on folio kernels one call
// covers a whole folio, which may be many pages).
int bpftop_ca_access(struct pt_regs *ctx)
{
    count_current(F_ACCESS, 1);
    return 0;
}

int bpftop_ca_bufdirty(struct pt_regs *ctx)
{
    count_current(F_BUFDIRTY, 1);
    return 0;
}

int bpftop_ca_add(struct pt_regs *ctx)
{
    count_current(F_ADDED, 1);
    return 0;
}

#ifndef DIRTY_VIA_TP
int bpftop_ca_dirtied(struct pt_regs *ctx)
{
    count_current(F_DIRTIED, 1);
    return 0;
}
#endif

#elif defined(HOOK_FENTRY)

struct folio;
struct page;
struct buffer_head;
struct address_space;
struct bdi_writeback;

#if ACCESS_FN == 1
KFUNC_PROBE(folio_mark_accessed, struct folio *folio)
#else
KFUNC_PROBE(mark_page_accessed, struct page *page)
#endif
{
    count_current(F_ACCESS, 1);
    return 0;
}

KFUNC_PROBE(mark_buffer_dirty, struct buffer_head *bh)
{
    count_current(F_BUFDIRTY, 1);
    return 0;
}

#if ADD_FN == 1
KFUNC_PROBE(filemap_add_folio, struct address_space *mapping, struct folio *folio)
#else
KFUNC_PROBE(add_to_page_cache_lru, struct page *page, struct address_space *mapping)
#endif
{
    count_current(F_ADDED, 1);
    return 0;
}

#ifndef DIRTY_VIA_TP
#if DIRTY_FN == 1
KFUNC_PROBE(folio_account_dirtied, struct folio *folio, struct address_space *mapping)
#else
KFUNC_PROBE(account_page_dirtied, struct page *page, struct address_space *mapping)
#endif
{
    count_current(F_DIRTIED, 1);
    return 0;
}
#endif

#endif

#if (defined(HOOK_KPROBE) || defined(HOOK_FENTRY)) && defined(DIRTY_VIA_TP)
// One per dirtied folio, as a kprobe on folio_account_dirtied would count.
#if DIRTY_TP_FOLIO
TRACEPOINT_PROBE(writeback, writeback_dirty_folio)
#else
TRACEPOINT_PROBE(writeback, writeback_dirty_page)
#endif
{
    count_current(F_DIRTIED, 1);
    return 0;
}
#endif

#if !defined(HOOK_KPROBE) && !defined(HOOK_FENTRY)
// Tracepoints; BCC attaches TRACEPOINT_PROBEs when loading.

// filemap_get_pages() reports the whole page range a read asks for
// (index..last_index, inclusive). When one batch of folios does not cover
// it, filemap_read() calls it again for the rest with the same last_index
// and a higher index: those pages were counted with the first call. The
// thread's last range tells a continuation from a new read.
struct read_range {
    u64 ino;
    u64 index;
    u64 last;
    u32 dev;
    u32 _pad;
};
BPF_TABLE("lru_hash", u32, struct read_range, last_read, MAX_THREADS);

// `file` identifies the file: its inode number and device (classic
// tracepoint) or its address_space pointer (raw tracepoint, never read).
static __always_inline void on_get_pages(u64 file, u32 dev, u64 first, u64 last)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    if (skip_tgid(tgid))
        return;
    if (last < first)
        return;
    u32 tid = (u32)pid_tgid;
    struct read_range *prev = last_read.lookup(&tid);
    if (prev) {
        if (prev->ino == file && prev->dev == dev && prev->last == last &&
            first > prev->index && first <= last) {
            prev->index = first;
            return;
        }
        // Rewritten in place: an LRU update per read costs more than this.
        prev->ino = file;
        prev->dev = dev;
        prev->index = first;
        prev->last = last;
    } else {
        struct read_range cur = {};
        cur.ino = file;
        cur.dev = dev;
        cur.index = first;
        cur.last = last;
        last_read.update(&tid, &cur);
    }
    count(tgid, F_ACCESS, last - first + 1);
}

#ifdef READ_RAW
// The raw tracepoint: TP_PROTO(mapping, index, last_index), as the
// kernel's BTF said before this was compiled. It skips the classic
// tracepoint's record (inode number and device read through the mapping),
// which is most of this hook's cost on a cached read.
int bpftop_ca_read_raw(struct bpf_raw_tracepoint_args *ctx)
{
    on_get_pages(ctx->args[0], 0, ctx->args[1], ctx->args[2]);
    return 0;
}
#else
TRACEPOINT_PROBE(filemap, mm_filemap_get_pages)
{
    on_get_pages(args->i_ino, args->s_dev, args->index, args->last_index);
    return 0;
}
#endif

#if defined(MMAP_RSS)
// mm_id -> the process's file pages mapped, in bytes, at its last change.
// Each increase while the process itself runs is pages it mapped from the
// page cache (read faults, fault-around, a whole large folio at once);
// decreases (unmaps, exit, reclaim) only move the baseline. The first
// change seen of a process is only a baseline.
BPF_TABLE("lru_hash", u32, s64, file_rss, MAX_THREADS);

TRACEPOINT_PROBE(kmem, rss_stat)
{
    if (args->member != 0)  // MM_FILEPAGES
        return 0;
    u32 id = args->mm_id;
    s64 size = args->size;
    s64 *last = file_rss.lookup(&id);
    if (!last) {
        file_rss.update(&id, &size);
        return 0;
    }
    s64 old = __sync_lock_test_and_set(last, size);
    if (!args->curr || size <= old)
        return 0;
    count_current(F_ACCESS, (u64)(size - old) >> 12);
    return 0;
}
#elif defined(TRACK_MMAP)
// A page fault on a file mapping that fault-around did not map: one page.
TRACEPOINT_PROBE(filemap, mm_filemap_fault)
{
    count_current(F_ACCESS, 1);
    return 0;
}

// Fault-around: the window of pages looked at (start..end, inclusive,
// already cut at the end of the file).
TRACEPOINT_PROBE(filemap, mm_filemap_map_pages)
{
    u64 first = args->index, last = args->last_index;
    if (last >= first)
        count_current(F_ACCESS, last - first + 1);
    return 0;
}
#endif

#ifdef DIRTY_RAW
TRACEPOINT_PROBE(filemap, mm_filemap_add_to_page_cache)
{
#ifdef ADD_HAS_ORDER
    u8 order = args->order;
    if (order > 20)
        order = 20;  // nonsense guard; folios are far smaller
    count_current(F_ADDED, 1ULL << order);
#else
    count_current(F_ADDED, 1);
#endif
    return 0;
}

// args[0] is the folio being dirtied: a large folio is dirtied whole, and
// the kernel adds all its pages to what it dirtied.
int bpftop_ca_dirty_raw(struct bpf_raw_tracepoint_args *ctx)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (skip_tgid(tgid))
        return 0;
    const char *folio = (const char *)ctx->args[0];
    u64 flags = 0;
    bpf_probe_read_kernel(&flags, sizeof(flags), folio + FOLIO_FLAGS);
    u64 pages = 1;
    if (flags & (1ULL << PG_HEAD_BIT)) {
#ifdef FOLIO_ORDER_BYTE
        u8 order = 0;
        bpf_probe_read_kernel(&order, sizeof(order), folio + FOLIO_ORDER);
#else
        unsigned long word = 0;
        bpf_probe_read_kernel(&word, sizeof(word), folio + FOLIO_ORDER);
        u8 order = word & 0xff;
#endif
        if (order > 20)
            order = 20;
        pages = 1ULL << order;
    }
    count(tgid, F_DIRTIED, pages);
    return 0;
}

#else
// Large folios: their order, remembered from when they entered the cache,
// so that a dirtied folio counts all its pages (the writeback tracepoint
// carries no size). Order-0 folios are not stored: absent means one page.
struct folio_key {
    u64 ino;
    u64 index;
};
BPF_TABLE("lru_hash", struct folio_key, u8, folio_order, MAX_LARGE_FOLIOS);

TRACEPOINT_PROBE(filemap, mm_filemap_add_to_page_cache)
{
    struct folio_key key = {};
    key.ino = args->i_ino;
    key.index = args->index;
#ifdef ADD_HAS_ORDER
    u8 order = args->order;
    if (order > 20)
        order = 20;  // nonsense guard; folios are far smaller
    if (order) {
        folio_order.update(&key, &order);
    } else {
        // A smaller folio now where a large one was: forget the old size.
        folio_order.delete(&key);
    }
    u64 pages = 1ULL << order;
#else
    u64 pages = 1;
#endif
    count_current(F_ADDED, pages);
    return 0;
}

#if DIRTY_TP_FOLIO
TRACEPOINT_PROBE(writeback, writeback_dirty_folio)
#else
TRACEPOINT_PROBE(writeback, writeback_dirty_page)
#endif
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (skip_tgid(tgid))
        return 0;
    struct folio_key key = {};
    key.ino = args->ino;
    key.index = args->index;
    u8 *order = folio_order.lookup(&key);
    u64 pages = order ? 1ULL << *order : 1;
    count(tgid, F_DIRTIED, pages);
    return 0;
}

#endif  // DIRTY_RAW

#endif
