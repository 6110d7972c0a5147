// What every bpftop program takes from the kernel's headers, named here
// instead of included: <linux/sched.h> alone is about 60% of a small
// program's compile (0.6 s of 1.0 s here, tens of seconds in an emulated
// guest), and the programs need two names from it.
#ifndef BPFTOP_COMMON_H
#define BPFTOP_COMMON_H

// include/linux/sched.h; fixed by the ABI (prctl PR_SET_NAME, /proc/PID/comm).
// A rung that needs the kernel's headers includes them first; there it is
// an enum (5.17 on), which a macro of the same name would break.
#ifndef _LINUX_SCHED_H
#define TASK_COMM_LEN 16
#endif

#include "keyfilter.h"

#endif
