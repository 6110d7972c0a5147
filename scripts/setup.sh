#!/usr/bin/env bash
# Idempotent set-up for bpftop on Debian/Ubuntu: distribution packages (BCC's
# Python bindings, bpftool, kernel headers), a headers fallback when the
# running kernel has none, and a virtualenv that sees the distribution's bcc.
# Quick when nothing is missing: every step checks before it acts.
#
#   scripts/setup.sh          set up for running bpftop
#   scripts/setup.sh --test   also install the test extras
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
extras=""
mode=${1:-}
[ "$mode" = "--test" ] && extras="[test]"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo make run)"
command -v apt-get >/dev/null || die "needs a Debian or Ubuntu system (apt-get not found)"

release=$(uname -r)
arch=$(dpkg --print-architecture)

missing=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed' || missing+=("$1"); }

need_pkg python3-bpfcc
need_pkg python3-venv
need_pkg python3-pip
need_pkg tmux
# The end-to-end test drives bpftop over a real SSH session to a private sshd
# it starts itself on loopback.
if [ -n "$extras" ]; then
    need_pkg openssh-server
    need_pkg openssh-client
    # The exporter test scrapes bpftop exporter with Debian's Prometheus
    # (its own binary on loopback, never the system service).
    need_pkg prometheus
    need_pkg openssl
fi
# The kernel matrix (scripts/kernel_matrix.py) boots Debian's stock kernels
# in QEMU guests with virtme-ng (which needs busybox for its initramfs), each
# with an ext4 image as its disk; BCC in the guest needs each kernel's
# headers. The packages stay installed, so later runs reuse them.
matrix_kernels=(linux-image-amd64 linux-headers-amd64 linux-image-6.12-amd64 linux-headers-6.12-amd64)
if [ -n "$extras" ]; then
    # shellcheck disable=SC1091
    if (. /etc/os-release && [ "$ID" = debian ] && [ "${VERSION_ID:-}" = 12 ]) && [ "$arch" = amd64 ]; then
        need_pkg qemu-system-x86
        need_pkg busybox-static
        need_pkg e2fsprogs
        for k in "${matrix_kernels[@]}"; do need_pkg "$k"; done
    else
        say "the kernel matrix boots Debian 12's amd64 kernels: not available on this system, so make test will report it"
    fi
fi
# The benchmarks run Debian's stock tools side by side and build small C
# load generators.
if [ "$mode" = "--bench" ]; then
    need_pkg bpfcc-tools
    need_pkg gcc
    need_pkg libc6-dev
fi
# bpftool: its own package on Debian, part of linux-tools on Ubuntu.
if ! command -v bpftool >/dev/null 2>&1 || ! bpftool version >/dev/null 2>&1; then
    if apt-cache show bpftool >/dev/null 2>&1; then missing+=(bpftool); else missing+=(linux-tools-common "linux-tools-$release"); fi
fi

apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then
        say "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
}
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ "${#missing[@]}" -gt 0 ]; then
    apt_update
    say "installing ${missing[*]}"
    # Installing openssh-server must not start a system sshd on port 22: a
    # policy-rc.d that says "no" keeps services down during the install.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt_install "${missing[@]}"
    if [ -n "$policy" ]; then rm -f "$policy"; trap - EXIT; fi
fi

# Kernel headers. BCC looks in /lib/modules/$release/{build,source}; the
# kernel may also carry its own (CONFIG_IKHEADERS), which BCC finds itself.
headers_ok() { [ -e "/lib/modules/$release/build/include" ] || [ -e /sys/kernel/kheaders.tar.xz ]; }
# The distribution's own headers: the ones its meta package (linux-headers-
# amd64, -generic) depends on, which its BCC compiles. Newer ones may be
# installed too (the kernel matrix's): Debian 12's BCC cannot compile 6.12's
# linux/bpf.h, which tools including net/sock.h (tcplife) pull in.
distro_headers() {
    local dep
    dep=$(dpkg-query -W -f='${Depends}' "$1" 2>/dev/null | sed -n 's/^\(linux-headers-[^ ,]*\).*/\1/p')
    [ -n "$dep" ] && [ -d "/usr/src/$dep" ] && echo "/usr/src/$dep"
}
# A fallback link made by an earlier run that points elsewhere than the
# distribution's headers goes (and is made again below).
link=$(readlink "/lib/modules/$release/build" 2>/dev/null || true)
if [ -n "$link" ] && [ ! -e /sys/kernel/kheaders.tar.xz ] && [[ "$link" == /usr/src/linux-headers-* ]]; then
    for meta in "linux-headers-$arch" linux-headers-generic; do
        want=$(distro_headers "$meta" || true)
        if [ -n "$want" ]; then
            if [ "$want" != "$link" ]; then
                say "kernel $release: the headers link pointed at $link; relinking to the distribution's $want"
                rm -f "/lib/modules/$release/build" "/lib/modules/$release/source"
            fi
            break
        fi
    done
fi
if ! headers_ok; then
    if apt-cache show "linux-headers-$release" >/dev/null 2>&1 || { apt_update; apt-cache show "linux-headers-$release" >/dev/null 2>&1; }; then
        say "installing linux-headers-$release"
        apt_install "linux-headers-$release" || true
    fi
fi
if ! headers_ok; then
    # No headers for this exact kernel (custom or cloud kernels). Fall back to
    # the distribution's: enough for bpftop, whose programs read tracepoint
    # arguments (described by the live tracefs format files) and never
    # dereference kernel structs whose layout could differ.
    meta="linux-headers-$arch"
    apt-cache show "$meta" >/dev/null 2>&1 || meta=linux-headers-generic
    if ! dpkg-query -W -f='${Status}' "$meta" 2>/dev/null | grep -q 'ok installed'; then
        apt_update
        say "no headers for kernel $release; installing the distribution's ($meta)"
        apt_install "$meta"
    fi
    build=$(distro_headers "$meta" || true)
    [ -n "$build" ] || build=$(ls -d /usr/src/linux-headers-*-"$arch" /usr/src/linux-headers-*-generic 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$build" ] || die "no kernel headers found under /usr/src after installing $meta"
    source_dir=${build%-"$arch"}-common
    [ -d "$source_dir" ] || source_dir=$build
    mkdir -p "/lib/modules/$release"
    ln -sfn "$build" "/lib/modules/$release/build"
    ln -sfn "$source_dir" "/lib/modules/$release/source"
    say "kernel $release has no headers: linked /lib/modules/$release/build -> $build and source -> $source_dir"
fi

# A venv on the distribution's python3, with system site packages, so that the
# distribution's bcc module (python3-bpfcc) is importable from it.
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
stamp="$venv/.bpftop-installed$extras"
if [ ! -e "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
    say "installing bpftop$extras into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here$extras"
    touch "$stamp"
fi
"$venv/bin/python" -c 'import bcc' 2>/dev/null || die "the venv cannot import bcc (python3-bpfcc)"
