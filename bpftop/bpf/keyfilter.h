// bpftop's run-time key filters (processes, ports, disks), shared by the
// programs; user space is bpftop/collectors/keyfilter.py. A mode word and a
// hash of keys, rewritten by user space at run time (never recompiled):
// KF_ALL counts everything, KF_ONLY only the listed keys, KF_EXCEPT all but
// them.
//
// BCC rewrites map calls (map.lookup()) only in the program's own text and
// refuses them inside a macro ("cannot use map function inside a macro"):
// this header declares the maps and makes the decision, and each program
// keeps the few lines that look the key up.
#ifndef BPFTOP_KEYFILTER_H
#define BPFTOP_KEYFILTER_H

#define KF_ALL 0
#define KF_ONLY 1
#define KF_EXCEPT 2

// The mode word (one u32 in an array) and the set of keys.
#define KEY_FILTER_MAPS(mode_map, key_map, key_type, max_keys) \
    BPF_ARRAY(mode_map, u32, 1);                               \
    BPF_HASH(key_map, key_type, u8, max_keys)

// Whether a key is filtered out, given the mode and whether the key is in
// the set. Callers look the key up only when the mode is not KF_ALL: the
// common case then costs one array lookup.
static __always_inline int kf_skip(u64 mode, int listed)
{
    if (mode == KF_ALL)
        return 0;
    return mode == KF_ONLY ? !listed : listed;
}

#endif
