"""Processes named with escape sequences, run as nobody and made to do
syscalls, connects, opens and file reads, seen by the real collectors: no
output of bpftop (batch text, the console on a real pseudo-terminal, a
snapshot of every tab) carries the sequences; JSON keeps the names."""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from bpfprogs import prog_ids, wait_until_gone, wait_until_loaded
from ptyrun import PtyRun

pytestmark = pytest.mark.bpf

# comm holds 15 bytes: one sequence per process.
NAMES = ["\x1b]52;c;YQ==\x07", "\x1b]0;OWNED\x07", "\x1b[2J\x1b[31m"]
RAW = [n.encode() for n in NAMES]
ESCAPED = [n.encode("unicode_escape").decode().replace("\\x1b", "\\x1b") for n in NAMES]
DANGEROUS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")

CHILD = textwrap.dedent("""
    import ctypes, os, socket, sys, time
    name = sys.argv[1].encode()
    ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # PR_SET_NAME
    path, port = sys.argv[2], int(sys.argv[3])
    while True:
        for _ in range(200):
            os.getppid()
        with open(path, "rb") as f:
            f.read()
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            pass
        s.close()
        time.sleep(0.05)
""")


@pytest.fixture
def hostile():
    import pathlib
    import shutil
    import tempfile

    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="bpftop-hostile-"))  # reachable by nobody
    data = tmp_path / "data"
    data.write_bytes(os.urandom(1 << 16))
    os.chmod(tmp_path, 0o755)
    os.chmod(data, 0o644)
    # A closed port: every connect is refused at once (a listener nobody
    # accepts from would fill its backlog and block the connects).
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    os.chmod(script, 0o644)
    procs = [
        subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", str(script),
                          name, str(data), str(port)], stdin=subprocess.DEVNULL)
        for name in NAMES
    ]
    try:
        time.sleep(0.5)
        for p in procs:
            assert p.poll() is None, "a hostile child died"
            with open(f"/proc/{p.pid}/comm", "rb") as f:
                assert f.read().rstrip(b"\n") in RAW
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp_path)


def test_batch_text_escapes_and_json_keeps_names(hostile):
    out = subprocess.run([sys.executable, "-m", "bpftop", "-b", "-n", "2", "-d", "1"], capture_output=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    for raw in RAW:
        assert raw not in out.stdout
    text = out.stdout.decode()
    assert not DANGEROUS.search(text)
    for tab in ("syscalls", "tcp", "cache"):
        assert f"bpftop {tab}" in text
    assert text.count("\\x1b]52;c;YQ==\\x07") >= 3  # syscalls, tcp and cache each show it
    js = subprocess.run([sys.executable, "-m", "bpftop", "--json", "-n", "2", "-d", "1", "--tab", "syscalls",
                         "--tab", "tcp", "--tab", "cache"], capture_output=True, text=True, timeout=120)
    last = json.loads(js.stdout.splitlines()[-1])["tabs"]
    comms = {p["comm"] for p in last["syscalls"]["processes"]}
    comms |= {e["comm"] for e in last["tcp"]["events"]}
    comms |= {r["comm"] for r in last["cache"]["rows"]}
    assert set(NAMES) <= comms


def test_console_every_tab_and_snapshot_escape_names(hostile, tmp_path):
    before = prog_ids()
    term = PtyRun([sys.executable, "-m", "bpftop", "-d", "0.5", "--snapshot-dir", str(tmp_path / "snaps")],
                  width=160, height=50)
    try:
        assert term.wait_for(b"SYSCALL", timeout=60), bytes(term.output[-2000:])
        assert wait_until_loaded(before)
        term.pump(3.0)
        for key in b"1234":
            term.send(bytes([key]))
            term.pump(1.5)
        term.send(b"S")
        assert term.wait_for(b"saved", timeout=30)
        term.send(b"q")
        assert term.wait(30) == 0
    finally:
        term.close()
    out = bytes(term.output)
    for raw in RAW:
        assert raw not in out
    assert b"\\x1b]52;c;YQ==\\x07" in out
    (snap,) = (tmp_path / "snaps").iterdir()
    text = snap.read_text()
    assert not DANGEROUS.search(text)
    assert text.count("\\x1b]52;c;YQ==\\x07") >= 2
    assert wait_until_gone(before) == []
