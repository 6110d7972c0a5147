"""Bad input and missing privileges: one clear line, an exit code, no traceback."""

import os
import shutil
import subprocess
import sys

import pytest

BPFTOP = [sys.executable, "-m", "bpftop"]


def run(args, prefix=(), **kw):
    return subprocess.run(list(prefix) + BPFTOP + list(args), capture_output=True, text=True, timeout=60, **kw)


@pytest.mark.parametrize(
    "args, words",
    [
        (["-d", "abc"], "not a number of seconds"),
        (["-d", "0"], "interval must be between"),
        (["-p", "12x"], "not a process id"),
        (["-p", "0"], "not a process id"),
        (["-p", "\u00b2"], "not a process id"),  # a digit to isdigit(), not to int()
        (["-n", "\u00b3"], "not a number of intervals"),
        (["--tab", "nope"], "no tab 'nope'"),
        (["-n", "0"], "not a number of intervals"),
        (["--once", "-n", "2"], "--once is -n 1"),
        (["--record-append"], "--record-append goes with --record"),
        (["--at", "+5"], "--at goes with --replay"),
        (["--replay", "x.bpftop", "-p", "1"], "do not apply"),
        (["--replay", "x.bpftop", "--latency"], "tabs' options (--latency) do not apply"),
        (["--replay", "/nonexistent/rec"], "cannot read /nonexistent/rec"),
        (["doctor", "extra"], "doctor takes only -v/--verbose"),
        (["--nice", "-21"], "nice must be between -20 and 19"),
        (["--nice", "high"], "not a nice value: 'high'"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments(args, words):
    res = run(args)
    assert res.returncode == 2
    assert words in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def drop_caps_prefix():
    """Run as root but with no capabilities, as in a locked-down container."""
    if os.geteuid() != 0:
        return ()
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to drop capabilities")
    return ("setpriv", "--inh-caps=-all", "--bounding-set=-all", "--")


@pytest.mark.parametrize("args", [["--once", "-d", "0.2"], ["--once", "--json"], []])
def test_without_privileges_one_line_and_exit_2(args):
    res = run(args, prefix=drop_caps_prefix(), stdin=subprocess.DEVNULL)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpftop: bpftop needs root"), res.stderr
    assert res.stdout == ""


def test_doctor_without_privileges_still_reports_facts():
    res = run(["doctor"], prefix=drop_caps_prefix())
    assert res.returncode == 2
    assert "kernel" in res.stdout and "collectors not tried" in res.stdout
    assert "Traceback" not in res.stderr


def test_more_pids_than_the_kernel_filter_holds_is_an_argument_error():
    pids = ",".join(str(p) for p in range(1, 1100))
    res = subprocess.run([sys.executable, "-m", "bpftop", "--once", "-p", pids], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "at most 1024 processes" in res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("bpftop: error: -p: at most 1024")


def test_tracefs_mounted_but_unreadable_is_not_called_unmounted():
    """As nobody, the root-only tracefs is there but closed: the message
    must say so, not send the operator to mount it."""
    if os.geteuid() != 0 or not os.path.isdir("/sys/kernel/tracing/events"):
        pytest.skip("needs root and a mounted tracefs to drop privileges from")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("from bpftop.bpf import system\n"
            "try:\n    system.ensure_tracefs()\nexcept Exception as e:\n    print(e)")
    res = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c",
                          code], capture_output=True, text=True, timeout=60, env={"PYTHONPATH": root})
    assert "is mounted at /sys/kernel/tracing but cannot be read (Permission denied)" in res.stdout, res
    assert "not mounted" not in res.stdout


def test_doctor_with_an_unknown_flag_is_an_argument_error():
    res = run(["doctor", "--fast"])
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == "bpftop: error: doctor takes only -v/--verbose and -q/--quick (got --fast)"
    assert res.stdout == "" and "Traceback" not in res.stderr
