// bpftop procs collector: process lifecycle (exec, exit, fork), file opens
// and signals. Counts per process are aggregated here (map "counts", keyed
// by tgid); exec, exit, open and signal events stream to user space.
//
// Feature blocks, chosen by the loader with integer -D flags only:
//   USE_RINGBUF     events through a BPF ring buffer of RINGBUF_PAGES pages;
//                   otherwise a perf buffer (user space picks its pages)
//   HAVE_OPEN       syscalls:sys_{enter,exit}_open exists (not on arm64)
//   HAVE_OPENAT2    syscalls:sys_{enter,exit}_openat2 exists (5.6+)
//   HAVE_EXECVEAT   syscalls:sys_enter_execveat exists
// Offsets into struct task_struct, from the running kernel's BTF (never the
// installed headers, which may be another kernel's): TASK_PID, TASK_TGID,
// TASK_REAL_PARENT, TASK_START_TIME, TASK_EXIT_CODE.
// Sizes: MAX_PROCS, MAX_PENDING, MAX_FILTER_PIDS, MAX_FILTER_UIDS,
// PATH_LEN, ARG_LEN, MAX_ARGS (powers of two), RINGBUF_PAGES.

#include <uapi/linux/ptrace.h>

#include "common.h"

#define EV_EXEC 1
#define EV_EXIT 2
#define EV_OPEN 3
#define EV_SIGNAL 4

// Slots of "lost": events the buffer had no room for, per kind, then
// counts the per-process table had no room for, then entries (exec
// arguments, opens in flight) the pending tables had no room for.
#define LOST_EXEC 0
#define LOST_EXIT 1
#define LOST_OPEN 2
#define LOST_SIGNAL 3
#define LOST_COUNTS 4
#define LOST_PENDING 5
#define LOST_SLOTS 6

// argv[i] was cut at ARG_LEN - 1 bytes: bit i of "trunc"; more than
// MAX_ARGS arguments: bit 31.
#define TRUNC_MORE_ARGS 31

// The layout user space unpacks (collectors/procs_events.py, HEADER):
// keep both in step. 64 bytes of header, then path, then (exec only) argv.
struct event {
    u64 ts_ns;     // bpf_ktime_get_ns()
    u64 start_ns;  // exit: the task's start_time (same clock)
    u32 kind;      // EV_*
    u32 pid;       // tgid of the acting process (signals: the sender)
    u32 tid;
    u32 ppid;      // tgid of the real parent (exec, exit)
    u32 uid;
    s32 ret;       // open: fd or -errno; exit: exit_code; signal: result
    u32 flags;     // open: flags; signal: the signal number
    u32 target;    // signal: target pid
    u32 argc;      // exec: arguments kept
    u32 trunc;     // exec: TRUNC_* bits; open/exec: path cut (bit 0 of "pathcut")
    char comm[TASK_COMM_LEN];
    char path[PATH_LEN];  // exec: filename; open: the path as given
    char argv[MAX_ARGS][ARG_LEN];
};
#define SMALL_EVENT (sizeof(struct event) - MAX_ARGS * ARG_LEN)

struct counts {
    u64 execs;
    u64 exits;
    u64 forks;
    u64 opens;
    u64 open_fails;
    u64 sig_sent;
    u64 sig_recv;
    u32 ppid;
    u32 uid;
    char comm[TASK_COMM_LEN];
};

struct execargs {
    u32 argc;
    u32 trunc;
    char argv[MAX_ARGS][ARG_LEN];
};

// An open in flight: the path is read at the syscall's exit, from the same
// user pointer (as opensnoop does), so no path is copied through the map.
struct opening {
    u64 path;
    u32 flags;
    u32 pad;
};

BPF_PERCPU_ARRAY(lost, u64, LOST_SLOTS);
BPF_PERCPU_ARRAY(scratch, struct event, 1);
BPF_PERCPU_ARRAY(args_scratch, struct execargs, 1);
BPF_HASH(counts, u32, struct counts, MAX_PROCS);
BPF_HASH(exec_args, u32, struct execargs, MAX_PENDING);
BPF_HASH(opens, u32, struct opening, MAX_PENDING);

#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif

// Process and user filters, run-time (keyfilter.h).
KEY_FILTER_MAPS(filter_mode, filter_pids, u32, MAX_FILTER_PIDS);
KEY_FILTER_MAPS(uid_mode, filter_uids, u32, MAX_FILTER_UIDS);

static __always_inline void count_lost(u32 slot)
{
    u64 *n = lost.lookup(&slot);
    if (n)
        *n += 1;
}

static __always_inline int skip_pid(u32 tgid)
{
    u32 zero = 0;
    u32 *mode = filter_mode.lookup(&zero);
    if (!mode || *mode == KF_ALL)
        return 0;
    return kf_skip(*mode, filter_pids.lookup(&tgid) != NULL);
}

static __always_inline int skip_uid(u32 uid)
{
    u32 zero = 0;
    u32 *mode = uid_mode.lookup(&zero);
    if (!mode || *mode == KF_ALL)
        return 0;
    return kf_skip(*mode, filter_uids.lookup(&uid) != NULL);
}

// The acting (current) process, filtered by pid and uid.
static __always_inline int skip_current(u32 tgid)
{
    return skip_pid(tgid) || skip_uid((u32)bpf_get_current_uid_gid());
}

static __always_inline u32 parent_tgid(void *task)
{
    void *parent = NULL;
    u32 ppid = 0;
    bpf_probe_read_kernel(&parent, sizeof(parent), task + TASK_REAL_PARENT);
    if (parent)
        bpf_probe_read_kernel(&ppid, sizeof(ppid), parent + TASK_TGID);
    return ppid;
}

// The entry of ``tgid``; "mine" says the current task is that process, so
// its name and user are taken.
static __always_inline struct counts *counts_of(u32 tgid, int mine)
{
    struct counts zero = {};
    struct counts *c = counts.lookup_or_try_init(&tgid, &zero);
    if (!c) {
        count_lost(LOST_COUNTS);
        return NULL;
    }
    if (mine && c->comm[0] == 0) {
        bpf_get_current_comm(&c->comm, sizeof(c->comm));
        c->uid = (u32)bpf_get_current_uid_gid();
        c->ppid = parent_tgid((void *)bpf_get_current_task());
    }
    return c;
}

static __always_inline struct event *new_event(u32 kind)
{
    u32 zero = 0;
    struct event *ev = scratch.lookup(&zero);
    if (!ev)
        return NULL;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    ev->ts_ns = bpf_ktime_get_ns();
    ev->start_ns = 0;
    ev->kind = kind;
    ev->pid = pid_tgid >> 32;
    ev->tid = (u32)pid_tgid;
    ev->ppid = 0;
    ev->uid = (u32)bpf_get_current_uid_gid();
    ev->ret = 0;
    ev->flags = 0;
    ev->target = 0;
    ev->argc = 0;
    ev->trunc = 0;
    bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
    return ev;
}

static __always_inline void submit(void *ctx, struct event *ev, u32 slot, int full)
{
    // Two fixed sizes keep the verifier's view of the length constant.
#ifdef USE_RINGBUF
    int err = full ? events.ringbuf_output(ev, sizeof(*ev), 0)
                   : events.ringbuf_output(ev, SMALL_EVENT, 0);
#else
    int err = full ? events.perf_submit(ctx, ev, sizeof(*ev))
                   : events.perf_submit(ctx, ev, SMALL_EVENT);
#endif
    if (err)
        // Counted here for both buffers, so the figure is exact per kind
        // (the perf buffer's own lost records do not say which kind).
        count_lost(slot);
}

// -- exec ---------------------------------------------------------------
// argv is read at the syscall's entry, while the old image's memory is
// still there, and joined to the exec by the thread id.

static __always_inline void stash_argv(const char *const *argv)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (skip_current(pid_tgid >> 32))
        return;
    u32 zero = 0;
    struct execargs *a = args_scratch.lookup(&zero);
    if (!a)
        return;
    a->argc = 0;
    a->trunc = 0;
#pragma unroll
    for (int i = 0; i < MAX_ARGS; i++) {
        const char *p = NULL;
        if (bpf_probe_read_user(&p, sizeof(p), &argv[i]) || !p)
            break;
        long n = bpf_probe_read_user_str(a->argv[i], ARG_LEN, p);
        if (n < 0)
            a->argv[i][0] = 0;
        if (n == ARG_LEN) {
            char next = 0;
            bpf_probe_read_user(&next, 1, p + ARG_LEN - 1);
            if (next)
                a->trunc |= 1u << i;
        }
        a->argc = i + 1;
    }
    if (a->argc == MAX_ARGS) {
        const char *p = NULL;
        if (!bpf_probe_read_user(&p, sizeof(p), &argv[MAX_ARGS]) && p)
            a->trunc |= 1u << TRUNC_MORE_ARGS;
    }
    u32 tid = (u32)pid_tgid;
    if (exec_args.update(&tid, a))
        count_lost(LOST_PENDING);
}

TRACEPOINT_PROBE(syscalls, sys_enter_execve)
{
    stash_argv(args->argv);
    return 0;
}

#ifdef HAVE_EXECVEAT
TRACEPOINT_PROBE(syscalls, sys_enter_execveat)
{
    stash_argv(args->argv);
    return 0;
}
#endif

// A failed exec leaves its arguments behind: dropped here. (After a
// successful one this finds nothing: the exec tracepoint took them.)
TRACEPOINT_PROBE(syscalls, sys_exit_execve)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    exec_args.delete(&tid);
    return 0;
}

#ifdef HAVE_EXECVEAT
TRACEPOINT_PROBE(syscalls, sys_exit_execveat)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    exec_args.delete(&tid);
    return 0;
}
#endif

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    u32 old = args->old_pid;
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct execargs *a = exec_args.lookup(&old);
    if (skip_current(tgid)) {
        if (a)
            exec_args.delete(&old);
        return 0;
    }
    struct counts *c = counts_of(tgid, 1);
    if (c) {
        __sync_fetch_and_add(&c->execs, 1);
        // The new image's name.
        bpf_get_current_comm(&c->comm, sizeof(c->comm));
    }
    struct event *ev = new_event(EV_EXEC);
    if (!ev) {
        if (a)
            exec_args.delete(&old);
        return 0;
    }
    ev->ppid = parent_tgid((void *)bpf_get_current_task());
    unsigned short off = args->data_loc_filename & 0xFFFF;
    long n = bpf_probe_read_kernel_str(ev->path, sizeof(ev->path), (void *)args + off);
    ev->flags = n == sizeof(ev->path) ? 1 : 0;  // the filename was cut
    if (a) {
        ev->argc = a->argc;
        ev->trunc = a->trunc;
        __builtin_memcpy(ev->argv, a->argv, sizeof(ev->argv));
        exec_args.delete(&old);
    } else {
        ev->argc = 0;
        ev->trunc = 1u << TRUNC_MORE_ARGS;  // arguments not seen (lost or started before)
    }
    submit(args, ev, LOST_EXEC, 1);
    return 0;
}

// -- exit and fork --------------------------------------------------------

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    // A process exits with its thread-group leader; threads do not count.
    if ((u32)pid_tgid != tgid || skip_current(tgid))
        return 0;
    struct counts *c = counts_of(tgid, 1);
    if (c)
        __sync_fetch_and_add(&c->exits, 1);
    struct event *ev = new_event(EV_EXIT);
    if (!ev)
        return 0;
    void *task = (void *)bpf_get_current_task();
    u64 start = 0;
    int code = 0;
    bpf_probe_read_kernel(&start, sizeof(start), task + TASK_START_TIME);
    bpf_probe_read_kernel(&code, sizeof(code), task + TASK_EXIT_CODE);
    ev->start_ns = start;
    ev->ret = code;
    ev->ppid = parent_tgid(task);
    submit(args, ev, LOST_EXIT, 0);
    return 0;
}

// A raw tracepoint: it hands over the child task, whose pid and tgid tell
// a new process (counted) from a new thread (not counted).
RAW_TRACEPOINT_PROBE(sched_process_fork)
{
    void *child = (void *)ctx->args[1];
    u32 cpid = 0, ctgid = 0;
    bpf_probe_read_kernel(&cpid, sizeof(cpid), child + TASK_PID);
    bpf_probe_read_kernel(&ctgid, sizeof(ctgid), child + TASK_TGID);
    if (cpid != ctgid)
        return 0;
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (skip_current(tgid))
        return 0;
    struct counts *c = counts_of(tgid, 1);
    if (c)
        __sync_fetch_and_add(&c->forks, 1);
    return 0;
}

// -- opens ----------------------------------------------------------------

static __always_inline void open_entry(const char *path, u32 flags)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (skip_current(pid_tgid >> 32))
        return;
    struct opening o = {};
    o.path = (u64)path;
    o.flags = flags;
    u32 tid = (u32)pid_tgid;
    if (opens.update(&tid, &o))
        count_lost(LOST_PENDING);
}

static __always_inline void open_exit(void *ctx, long ret)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct opening *o = opens.lookup(&tid);
    if (!o)
        return;
    u32 tgid = pid_tgid >> 32;
    // An open that entered before the filter changed, and returns after:
    // the filter in force now decides, as it does for every count.
    if (skip_current(tgid)) {
        opens.delete(&tid);
        return;
    }
    struct counts *c = counts_of(tgid, 1);
    if (c) {
        __sync_fetch_and_add(&c->opens, 1);
        if (ret < 0)
            __sync_fetch_and_add(&c->open_fails, 1);
    }
    struct event *ev = new_event(EV_OPEN);
    if (ev) {
        ev->ret = (s32)ret;
        ev->flags = o->flags;
        long n = bpf_probe_read_user_str(ev->path, sizeof(ev->path), (void *)o->path);
        if (n < 0)
            ev->path[0] = 0;
        ev->trunc = n == sizeof(ev->path);
        submit(ctx, ev, LOST_OPEN, 0);
    }
    opens.delete(&tid);
}

#ifdef HAVE_OPEN
TRACEPOINT_PROBE(syscalls, sys_enter_open)
{
    open_entry(args->filename, (u32)args->flags);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_open)
{
    open_exit(args, args->ret);
    return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    open_entry(args->filename, (u32)args->flags);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_openat)
{
    open_exit(args, args->ret);
    return 0;
}

#ifdef HAVE_OPENAT2
TRACEPOINT_PROBE(syscalls, sys_enter_openat2)
{
    u64 flags = 0;
    // struct open_how starts with its u64 flags (uapi).
    bpf_probe_read_user(&flags, sizeof(flags), (void *)args->how);
    open_entry(args->filename, (u32)flags);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_openat2)
{
    open_exit(args, args->ret);
    return 0;
}
#endif

// -- signals --------------------------------------------------------------
// signal_generate runs in the sender's context (for SIGCHLD that is the
// exiting child; for a fault, the faulting task itself). The uid filter
// holds for the sender; the pid filter for the sender (sent) or the target
// (received): the receivers of the filtered users' signals show in SIG IN.

TRACEPOINT_PROBE(signal, signal_generate)
{
    u32 sender = bpf_get_current_pid_tgid() >> 32;
    u32 target = args->pid;
    int uid_ok = !skip_uid((u32)bpf_get_current_uid_gid());
    int send_ok = uid_ok && !skip_pid(sender);
    int recv_ok = uid_ok && !skip_pid(target);
    if (!send_ok && !recv_ok)
        return 0;
    if (send_ok) {
        struct counts *c = counts_of(sender, 1);
        if (c)
            __sync_fetch_and_add(&c->sig_sent, 1);
    }
    if (recv_ok) {
        struct counts *c = counts_of(target, target == sender);
        if (c)
            __sync_fetch_and_add(&c->sig_recv, 1);
    }
    struct event *ev = new_event(EV_SIGNAL);
    if (!ev)
        return 0;
    ev->flags = args->sig;
    ev->target = target;
    ev->ret = args->result;
    ev->path[0] = 0;
    submit(args, ev, LOST_SIGNAL, 0);
    return 0;
}
