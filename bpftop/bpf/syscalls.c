// bpftop syscalls collector: per-syscall count, errors and latency, and
// per-process counts, aggregated in the kernel.
//
// Feature blocks, chosen by the loader with integer -D flags only:
//   USE_RAW_TP      raw tracepoints sys_enter/sys_exit (cheapest measured);
//                   otherwise the classic raw_syscalls tracepoints
//   BTF_ARGS        with USE_RAW_TP: the programs are loaded BTF-typed
//                   (tp_btf, 5.5+) and read pt_regs without a helper
//   PER_PROCESS     count per process as well
//
// Latency is a probe of its own, switched at run time without recompiling
// or attaching anything: latency_since (0: off, else the bpf_ktime_get_ns
// at which it was switched on) tells the sys_enter program whether to
// stamp starts and the exit program whether to look for one, and which
// starts are from this switch-on: a start stamped before it (a call
// already running, or left from an earlier switch-on) is never timed.
// sys_enter is attached at the first switch-on and then stays attached:
// attaching and detaching it at each switch took Debian's 6.12 kernel down
// in the kernel matrix's guests. Never switched on, syscalls pay for the
// exit program only.
//
// Where a start is kept: in a per-CPU slot, tagged with the thread, while
// the thread stays on the CPU (most calls: no hashing at either end); a
// thread that leaves the CPU inside a call (it blocks or is preempted)
// takes its start along, moved by the sched_switch program into an LRU
// hash by thread id, where its exit finds it on whichever CPU it returns.
// While latency is on, sched_switch empties the slot at every switch, so
// a slot only ever holds the start of the thread running on its CPU (one
// left from before a switch-off is older than the next switch-on: never
// timed). It is attached before sys_enter and stays attached likewise.
// Sizes and syscall numbers: NR_SYSCALLS, MAX_PROCS, MAX_THREADS,
// MAX_FILTER_PIDS, SC_EXIT, SC_EXIT_GROUP, SC_EXECVE, SC_EXECVEAT, SC_CLONE,
// SC_CLONE3, SC_FORK, SC_VFORK.
//
// Counters are cumulative and never cleared from user space: the reader
// takes differences, so no count is lost between a read and a reset.

#include <uapi/linux/ptrace.h>

#include "common.h"

struct sc_stat {
    u64 count;
    u64 errors;
    u64 total_ns;
    u64 timed;
};

// Slot NR_SYSCALLS collects numbers outside the table (-1, x32, future).
BPF_PERCPU_ARRAY(sc_stats, struct sc_stat, NR_SYSCALLS + 1);

// Process filter, changed at run time by user space without recompiling
// (keyfilter.h): everyone, only the tgids in filter_pids, or all but them.
KEY_FILTER_MAPS(filter_mode, filter_pids, u32, MAX_FILTER_PIDS);

#ifdef PER_PROCESS
// Per-process counts. A hash lookup on every syscall would cost more than
// everything else here, so each CPU keeps the process it last saw and a
// pending count for it; the hash is touched only when the CPU switches to
// another process (or the process execs). User space adds the pending
// counts to the hash's (see collectors/syscalls.py for the consistent read).
struct proc_stat {
    u64 count;
    char comm[TASK_COMM_LEN];
};
BPF_HASH(proc_stats, u32, struct proc_stat, MAX_PROCS);

struct proc_cache {
    u32 tgid;
    u32 switches;  // bumped on every flush: lets user space detect one
    u64 pending;
};
BPF_PERCPU_ARRAY(proc_cache, struct proc_cache, 1);
// Calls that could not be attributed: the process map was full.
BPF_PERCPU_ARRAY(untracked, u64, 1);

static __always_inline void add_untracked(u64 n)
{
    u32 zero = 0;
    u64 *u = untracked.lookup(&zero);
    if (u)
        *u += n;
}

static __always_inline void count_process(u32 tgid, u32 id, long ret)
{
    u32 zero = 0;
    struct proc_cache *c = proc_cache.lookup(&zero);
    if (!c)
        return;
    int exec = (id == SC_EXECVE || id == SC_EXECVEAT) && ret == 0;
    if (c->tgid == tgid && c->pending && !exec) {
        c->pending++;
        return;
    }
    if (c->pending) {
        struct proc_stat *old = proc_stats.lookup(&c->tgid);
        if (old)
            __sync_fetch_and_add(&old->count, c->pending);
        else
            add_untracked(c->pending);
    }
    struct proc_stat *p = proc_stats.lookup(&tgid);
    if (!p) {
        struct proc_stat init = {};
        bpf_get_current_comm(&init.comm, sizeof(init.comm));
        proc_stats.insert(&tgid, &init);
        p = proc_stats.lookup(&tgid);
    } else if (exec) {
        // After exec the process has a new name.
        bpf_get_current_comm(&p->comm, sizeof(p->comm));
    }
    c->switches++;
    if (p) {
        c->tgid = tgid;
        c->pending = 1;
    } else {
        c->tgid = 0;
        c->pending = 0;
        add_untracked(1);
    }
}
#endif

// An array's lookup is inlined by the verifier: the exit program's cost
// while latency is off is one load and one branch.
BPF_ARRAY(latency_since, u64, 1);

// The start of the call the thread on this CPU is in (ts 0: none).
struct cpu_start {
    u32 tid;
    u32 _pad;
    u64 ts;
};
BPF_PERCPU_ARRAY(cpu_start, struct cpu_start, 1);
// tid -> start of a call its thread left the CPU in (0: taken). LRU so
// threads killed inside a syscall cannot fill it.
BPF_TABLE("lru_hash", u32, u64, start, MAX_THREADS);

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

static __always_inline void on_enter(u32 id)
{
    u32 zero = 0;
    u64 *since = latency_since.lookup(&zero);
    if (!since || !*since)
        return;  // latency off: one load and a branch
    // exit and exit_group never return: a start would only linger.
    if (id == SC_EXIT || id == SC_EXIT_GROUP)
        return;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (skip_tgid(pid_tgid >> 32))
        return;
    struct cpu_start *c = cpu_start.lookup(&zero);
    if (!c)
        return;
    c->tid = (u32)pid_tgid;
    c->ts = bpf_ktime_get_ns();
}

// The current call's start, taken (a start is used once), or 0.
static __always_inline u64 take_start(u32 tid)
{
    u32 zero = 0;
    struct cpu_start *c = cpu_start.lookup(&zero);
    if (c && c->ts && c->tid == tid) {
        u64 ts = c->ts;
        c->ts = 0;
        return ts;
    }
    // 0 marks a start already used: an exit whose entry the kernel
    // skipped (recursion guard) must not reuse the previous call's.
    // Writing 0 costs less than deleting the entry.
    u64 *tsp = start.lookup(&tid);
    if (!tsp || !*tsp)
        return 0;
    u64 ts = *tsp;
    *tsp = 0;
    return ts;
}

// The thread leaving this CPU takes the start of the call it is in along.
static __always_inline void on_switch(void)
{
    u32 zero = 0;
    u64 *since = latency_since.lookup(&zero);
    if (!since || !*since)
        return;
    struct cpu_start *c = cpu_start.lookup(&zero);
    if (!c || !c->ts)
        return;
    // Still the leaving thread's: it runs sched_switch itself.
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 ts = c->ts;
    c->ts = 0;
    if (c->tid != tid || ts < *since)
        return;
    // A thread that blocked in a call before has its entry: written in
    // place, which costs far less than an LRU update (a new node each time).
    u64 *slot = start.lookup(&tid);
    if (slot)
        *slot = ts;
    else
        start.update(&tid, &ts);
}

static __always_inline void on_exit(u32 id, long ret)
{
    // A new task's first return to user space passes sys_exit with the
    // number of the clone that made it and 0: one call would count twice.
    // strace -f counts it once, in the caller, and so does this.
    if (ret == 0 && (id == SC_CLONE || id == SC_CLONE3 || id == SC_FORK || id == SC_VFORK))
        return;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    if (skip_tgid(tgid))
        return;

    u32 slot = id < NR_SYSCALLS ? id : NR_SYSCALLS;
    struct sc_stat *s = sc_stats.lookup(&slot);
    if (!s)
        return;
    s->count++;
    // -4095..-1 are errno values; larger "negative" returns are addresses.
    if (ret < 0 && ret >= -4095)
        s->errors++;

    u32 zero = 0;
    u64 *since = latency_since.lookup(&zero);
    if (since && *since) {
        u64 ts = take_start((u32)pid_tgid);
        if (ts && ts >= *since) {
            s->total_ns += bpf_ktime_get_ns() - ts;
            s->timed++;
        }
    }

#ifdef PER_PROCESS
    count_process(tgid, id, ret);
#endif
}

#ifdef USE_RAW_TP

// args[0] is the task's struct pt_regs: the syscall number at exit is the
// saved orig_ax (x86_64) / syscallno (arm64), part of the user ABI.
#if defined(__x86_64__)
#define SC_NR_OFFSET offsetof(struct pt_regs, orig_ax)
#elif defined(__aarch64__)
#define SC_NR_OFFSET offsetof(struct pt_regs, syscallno)
#else
#error "raw tracepoint rungs support x86_64 and arm64; the tracepoint rung covers the rest"
#endif

static __always_inline u32 exit_syscall_nr(struct bpf_raw_tracepoint_args *ctx)
{
    long nr = -1;
#ifdef BTF_ARGS
    // Loaded BTF-typed (tp_btf), args[0] is known to the verifier as a
    // struct pt_regs pointer: one checked load, no helper call (a third of
    // the program's time). Written as assembly because BCC would turn a C
    // dereference into bpf_probe_read_kernel.
    u64 regs = ctx->args[0];
    asm volatile("%0 = *(u64 *)(%1 + %2)" : "=r"(nr) : "r"(regs), "i"(SC_NR_OFFSET));
#else
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    bpf_probe_read_kernel(&nr, sizeof(nr), (char *)regs + SC_NR_OFFSET);
#endif
    return (u32)nr;
}

// The exit program counts; the enter and switch programs carry latency.
int bpftop_sc_exit(struct bpf_raw_tracepoint_args *ctx)
{
    on_exit(exit_syscall_nr(ctx), (long)ctx->args[1]);
    return 0;
}

int bpftop_sc_enter(struct bpf_raw_tracepoint_args *ctx)
{
    on_enter((u32)ctx->args[1]);
    return 0;
}

int bpftop_sc_switch(struct bpf_raw_tracepoint_args *ctx)
{
    on_switch();
    return 0;
}

#else  // classic raw_syscalls tracepoints, attached by name (not BCC's
       // TRACEPOINT_PROBE: it attaches at load, and latency's programs are
       // attached at its first switch-on). Their records' layout has been
       // fixed since 3.x; the sched_switch program reads nothing of its.

struct sc_enter_args {
    u64 common;
    long id;
    unsigned long args[6];
};

struct sc_exit_args {
    u64 common;
    long id;
    long ret;
};

int bpftop_sc_exit(struct sc_exit_args *args)
{
    on_exit((u32)args->id, args->ret);
    return 0;
}

int bpftop_sc_enter(struct sc_enter_args *args)
{
    on_enter((u32)args->id);
    return 0;
}

int bpftop_sc_switch(void *args)
{
    on_switch();
    return 0;
}

#endif
