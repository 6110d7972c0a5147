"""Compiler noise never reaches the user: what clang, BCC and libbpf print
while a program loads is kept with its hook attempt and shown by
``bpftop doctor -v`` only.

The noise is real: Debian 12's 6.12 headers (which the kernel matrix
installs) make clang warn about every program ("6 warnings generated"), as
it did on Debian's 6.12 kernel in the issue. The headers bpftop compiles
against are switched in a private mount namespace, as they would be on a
machine whose newest headers are those."""

import glob
import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = platform.release()


def header_sets():
    """(name, build dir, source dir) of each Debian headers package here."""
    sets = []
    for build in sorted(glob.glob("/usr/src/linux-headers-*")):
        name = os.path.basename(build)[len("linux-headers-"):]
        if name.endswith("-common") or not os.path.exists(os.path.join(build, "include")):
            continue
        source = build.rsplit("-", 1)[0] + "-common"
        if os.path.isdir(source):
            sets.append((name, build, source))
    return sets


def with_headers(build, source, *args, timeout=600):
    """bpftop ARGS compiling against these headers, in a mount namespace of
    its own: the machine's /lib/modules stays as it is."""
    kdir = f"/lib/modules/{RELEASE}"
    script = f"mount --bind \"$1\" {kdir}/build && mount --bind \"$2\" {kdir}/source && shift 2 && exec \"$@\""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", build, source,
         sys.executable, "-m", "bpftop", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.bpf
@pytest.mark.parametrize("tab", ["syscalls", "disk", "tcp", "cache"])
@pytest.mark.parametrize("headers", header_sets() or [("none", "", "")], ids=lambda h: h[0])
def test_once_json_stderr_empty_with_every_installed_headers(headers, tab):
    _name, build, source = headers
    if not build:
        pytest.fail("no kernel headers under /usr/src (make test installs them)")
    res = with_headers(build, source, "--once", "--json", "--tab", tab, "-d", "0.2")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    snap = json.loads(res.stdout)
    assert snap["tab"] == tab and "rows" in snap


@pytest.mark.bpf
def test_doctor_verbose_shows_the_compiler_output_that_batch_mode_hides():
    sets = header_sets()
    warned = [h for h in sets if h[0].startswith("6.12")]
    if not warned:
        pytest.skip(f"clang warns with Debian's 6.12 headers (linux-headers-6.12.*-amd64), not installed here: "
                    f"{[h[0] for h in sets]}")
    _name, build, source = warned[-1]
    res = with_headers(build, source, "--once", "-d", "0.2", "--tab", "cache")
    assert res.returncode == 0 and res.stderr == "" and "PID" in res.stdout

    verbose = with_headers(build, source, "doctor", "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stderr == ""
    out = verbose.stdout
    # Every tab's chosen rung compiled with clang's warnings, kept with it.
    for tab in ("syscalls", "disk", "tcp", "cache"):
        section = out.split(f"\n{tab} collector", 1)[1].split(" collector", 1)[0]
        chosen = section.split("[chosen]", 1)[1]
        kept = chosen.split("\n  [", 1)[0]
        assert "what the compiler, BCC and libbpf printed:" in kept, section
        assert "warnings generated" in kept and "warning:" in kept, section
    assert "\x1b" not in out


def test_native_output_is_kept_while_python_messages_from_other_threads_still_show():
    """fd 2 is the process's: while a compile's output is kept, another
    thread's Python message must still reach stderr, and none of the native
    output may."""
    code = textwrap.dedent("""
        import os, sys, threading, time
        from bpftop.stderr_guard import python_stderr_apart
        from bpftop.bpf import loader

        with python_stderr_apart():
            go = threading.Event()
            def chatter():
                go.wait()
                for i in range(200):
                    print(f"thread message {i}", file=sys.stderr)
            t = threading.Thread(target=chatter)
            t.start()
            with loader.native_output_kept() as kept:
                go.set()
                for i in range(200):
                    os.write(2, f"native noise {i}\\n".encode())
                    time.sleep(0.0005)
                t.join()
            print(f"kept {kept.text.count('native noise')} native lines", file=sys.stderr)
        os.write(2, b"fd 2 is back\\n")
    """)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert [line for line in lines if line.startswith("thread message")] == [f"thread message {i}" for i in range(200)]
    assert not any("native noise" in line for line in lines)
    assert "kept 200 native lines" in lines
    assert lines[-1] == "fd 2 is back"
