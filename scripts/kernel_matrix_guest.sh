#!/bin/bash
# Runs inside one kernel-matrix guest (started by scripts/kernel_matrix.py):
# every test marked `matrix` (the real-eBPF tests that check numbers against
# ground truth, on the rung this kernel chooses and on each other rung that
# loads here, and an exit-cleanup check).
#
#   kernel_matrix_guest.sh OUTDIR REPO TIME_SCALE
#
# OUTDIR is shared with the host (--rwdir); everything the host reads back
# is written there: kernel, hooks.txt (the rung each ladder chose, written
# by the tests: tests/shared.py), junit.xml, pytest.rc.
# OUTDIR/pytest-args, when the host wrote it (kernel_matrix.py
# --pytest-args), holds a subset's pytest words, one a line.
set -u
out=$1
repo=$2
scale=$3

uname -r > "$out/kernel"

# The guest's root is the host's, shared over 9p: it does not go through a
# block device or the page cache as a disk does. The host attached an ext4
# image as the only virtio disk; the tests put their files there.
disk=""
for d in /sys/block/vd* /sys/block/sd*; do
    [ -e "$d" ] && disk=/dev/${d##*/} && break
done
if [ -z "$disk" ]; then
    echo "guest: no virtio disk found" >&2
    echo 1 > "$out/pytest.rc"
    exit 1
fi
mkdir -p /tmp/bpftop-disk
if ! mount -t ext4 "$disk" /tmp/bpftop-disk; then
    echo "guest: cannot mount $disk" >&2
    echo 1 > "$out/pytest.rc"
    exit 1
fi

export BPFTOP_REQUIRE_BPF=1
export BPFTOP_TEST_WORKDIR=/tmp/bpftop-disk
export BPFTOP_TEST_TIME_SCALE=$scale
cd "$repo" || exit 1

extra=()
if [ -e "$out/pytest-args" ]; then
    mapfile -t extra < "$out/pytest-args"
fi
# No doctor run here: it compiled each ladder's chosen rung again, six
# minutes a guest, for what the tests below record as they start them.
export BPFTOP_MATRIX_HOOKS=$out/hooks.txt

start=$(date +%s)
# Only the files that hold matrix tests: collecting the others imports the
# whole console, minutes over 9p under emulation. Files or node ids among a
# subset's words replace them.
mapfile -t files < <(grep -l "pytest.mark.matrix" tests/test_*.py)
for a in "${extra[@]}"; do
    case $a in tests/*) files=() ;; esac
done
.venv/bin/python -m pytest -m matrix -p no:cacheprovider -q -rfEs "${files[@]}" "${extra[@]}" \
    -o timeout="$(( 120 * ${scale%.*} ))" --junitxml="$out/junit.xml"
echo $? > "$out/pytest.rc"
echo "guest: tests took $(( $(date +%s) - start )) s"
umount /tmp/bpftop-disk
