"""Recordings are handed around and replayed without root: a hostile one
must neither drive the terminal nor exhaust memory nor crash the reader."""

import gzip
import json
import os
import re
import subprocess
import sys
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ptyrun import PtyRun

from bpftop.recording.file import Limits, RecordingError, read
from bpftop.recording.replay import Replay
from bpftop.tabs import TABS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "demo.bpftop")
OSC52 = "\x1b]52;c;ZWNobyBwd25lZCA+IC90bXAvcHduZWQ=\x07"
TITLE = "\x1b]0;OWNED\x1b\\"
CLEAR = "\x1b[2J\x1b[31m"
HOSTILE = OSC52 + TITLE + CLEAR + "\u202ecod\u200b"
RAW_SEQUENCES = [s.encode() for s in (OSC52, TITLE, "\x1b[2J", "\u202e")]
DANGEROUS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b-\u200f]")


def demo_lines():
    return gzip.decompress(open(DEMO, "rb").read()).split(b"\n")


def hostile_recording(path):
    """The demo with every process name, the host and the hooks replaced by
    escape sequences, JSON-encoded as a writer would."""
    hostile = json.dumps(HOSTILE)[1:-1].encode()
    lines = demo_lines()
    head = json.loads(lines[0])
    head["host"] = HOSTILE
    head["hooks"] = dict.fromkeys(head.get("tabs", []), HOSTILE)
    lines[0] = json.dumps(head).encode()
    body = b"\n".join(lines[1:]).replace(b'"python"', b'"' + hostile + b'"')
    assert hostile in body
    path.write_bytes(gzip.compress(lines[0] + b"\n" + body))
    return path


def run(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "bpftop", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_replayed_text_of_every_tab_is_escaped_and_json_is_original(tmp_path):
    path = hostile_recording(tmp_path / "hostile.bpftop")
    # The demo was recorded before the BPF and procs tabs existed; their
    # hostile replays are in tests/test_bpf_text.py and, with synthetic
    # snapshots, tests/test_recording.py.
    for tab in (t for t in TABS if t in json.loads(demo_lines()[0])["tabs"]):
        text = run("--replay", str(path), "--once", "--tab", tab)
        assert text.returncode == 0, text.stderr
        assert not DANGEROUS.search(text.stdout), (tab, text.stdout)
        js = run("--replay", str(path), "--once", "--json", "--tab", tab)
        assert js.returncode == 0
        if tab in ("syscalls", "tcp", "cache"):
            assert "\\x1b]52;c;" in text.stdout, tab
            assert HOSTILE in js.stdout.encode().decode("unicode_escape") or HOSTILE in json.dumps(
                json.loads(js.stdout)), tab


def test_replay_console_never_writes_the_sequences(tmp_path):
    """On a real pseudo-terminal, every tab shown: the host in the title
    line, names in the tables, hooks in the status lines."""
    path = hostile_recording(tmp_path / "hostile.bpftop")
    term = PtyRun([sys.executable, "-m", "bpftop", "--replay", str(path), "--snapshot-dir", str(tmp_path / "snaps")])
    try:
        assert term.wait_for(b"REPLAY", timeout=60), bytes(term.output[-2000:])
        for key in b"1234":
            term.send(bytes([key]))
            term.pump(1.0)
        term.send(b"S")  # every tab, as a snapshot file
        assert term.wait_for(b"saved", timeout=30), bytes(term.output[-3000:])
        term.send(b"q")
        assert term.wait(30) == 0
    finally:
        term.close()
    out = bytes(term.output)
    assert b"\\x1b]52;c;" in out  # the name is shown, escaped
    for seq in RAW_SEQUENCES:
        assert seq not in out
    (snap,) = (tmp_path / "snaps").iterdir()
    text = snap.read_text()
    assert "\\x1b]52;c;" in text and not DANGEROUS.search(text)


def peak_rss_kb(*args):
    """Replay in a child that reports its own peak RSS."""
    code = ("import resource, sys; from bpftop import cli; rc = cli.main(sys.argv[1:]); "
            "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    rss = int(re.search(r"RSS (\d+)", res.stderr).group(1))
    return res, rss


def header_bytes():
    return demo_lines()[0] + b"\n"


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bombs")
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(d / "zeros.bpftop", "wb") as f:  # 256 MB of zeros after a valid header, 250 KB on disk
        f.write(z.compress(header_bytes()))
        zeros = b"\0" * (1 << 20)
        for _ in range(256):
            f.write(z.compress(zeros))
        f.write(z.flush())
    with gzip.open(d / "newlines.bpftop", "wb") as f:  # 256 MB of newlines, 260 KB on disk
        f.write(header_bytes())
        for _ in range(256):
            f.write(b"\n" * (1 << 20))
    with gzip.open(d / "deep.bpftop", "wb") as f:
        f.write(b"\n".join(demo_lines()[:30]) + b"\n")
        f.write(b"[" * 500000 + b"]" * 500000 + b"\n")
    return d


@pytest.mark.parametrize("name, why", [
    ("zeros", "longer than 16 MB"), ("newlines", "not valid JSON"), ("deep", "nested more than 64 deep"),
])
def test_bombs_end_in_one_line_with_bounded_memory(bombs, name, why):
    res, rss = peak_rss_kb("--replay", str(bombs / f"{name}.bpftop"), "--once", "--tab", "syscalls")
    lines = [line for line in res.stderr.splitlines() if not line.startswith("RSS ")]
    assert len(lines) == 1 and why in lines[0], res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    # The demo replays in about 60 MB here; a bomb may add a few lines' worth.
    _demo, base = peak_rss_kb("--replay", DEMO, "--once", "--tab", "syscalls")
    assert rss < base + 4 * Limits().line_bytes // 1024, (rss, base)


def test_deep_nesting_replays_the_valid_part(bombs):
    res = run("--replay", str(bombs / "deep.bpftop"), "--once", "--tab", "tcp")
    assert res.returncode == 0 and res.stdout.startswith("bpftop tcp"), res.stderr
    assert "nested more than 64 deep" in res.stderr


def test_dev_zero_is_refused_at_once():
    res, _rss = peak_rss_kb("--replay", "/dev/zero", "--once")
    assert res.returncode == 2 and "not a bpftop recording" in res.stderr
    assert "Traceback" not in res.stderr


def test_limits_are_configurable_and_name_the_limit(tmp_path):
    rec = read(DEMO, limits=Limits(line_bytes=1000))
    assert rec.problem.startswith("a line longer than 1000 bytes decompressed, over the limit")
    assert read(DEMO, limits=Limits(total_bytes=100_000)).problem.startswith("more than 100000 bytes")
    assert not read(DEMO).problem


def _mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in ops:
        if not buf:
            break
        i = pos % len(buf)
        if kind == "flip":
            buf[i] ^= value or 1
        elif kind == "cut":
            del buf[i:]
        elif kind == "insert":
            buf[i:i] = bytes([value]) * (value % 7 + 1)
        else:
            del buf[i:i + value % 64 + 1]
    return bytes(buf)


ops = st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]), st.integers(0, 1 << 20),
                         st.integers(0, 255)), min_size=1, max_size=6)


def _replays_or_refuses(path):
    try:
        rec = read(str(path))
    except RecordingError as e:
        assert "\n" not in str(e)
        return
    replay = Replay(rec) if rec.frames else None
    if replay is None:
        return
    for tab, snap in replay.snapshots().items():
        TABS[tab].to_text(snap)
        json.dumps(TABS[tab].to_dict(snap))


def test_a_snapshot_filed_under_another_tab_ends_the_readable_part(tmp_path):
    """One flipped byte turned a frame's "syscalls" into "ryscalls" (found
    by the decompressed fuzz below, in CI): the record is damaged, not a
    tab of its own that no renderer knows."""
    lines = gzip.decompress(open(DEMO, "rb").read()).split(b"\n")
    first = next(i for i, line in enumerate(lines) if line.startswith(b'{"tab":"syscalls"'))
    later = [i for i, line in enumerate(lines) if line.startswith(b'{"tab":')]
    bad = later[len(later) // 2]
    lines[bad] = lines[bad].replace(b'{"tab":"', b'{"tab":"\\u001b[2J', 1)
    path = tmp_path / "m.bpftop"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    rec = read(str(path))
    assert rec.problem.startswith(f"record on line {bad + 1} cannot be read (a ")
    assert "filed under tab '\\x1b[2J" in rec.problem and "\x1b" not in rec.problem
    assert len(rec.frames) == len([i for i in later if i < bad]) and set(rec.tabs) <= set(TABS)
    assert first < bad
    res = subprocess.run([sys.executable, "-m", "bpftop", "--replay", str(path), "--once"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0 and "cannot be read" in res.stderr and "Traceback" not in res.stderr
    assert "\x1b" not in res.stderr + res.stdout


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_fuzz_mutated_compressed_recording(tmp_path, ops):
    path = tmp_path / "m.bpftop"
    path.write_bytes(_mutate(open(DEMO, "rb").read(), ops))
    _replays_or_refuses(path)


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_fuzz_mutated_decompressed_recording(tmp_path, ops):
    path = tmp_path / "m.bpftop"
    plain = gzip.decompress(open(DEMO, "rb").read())
    path.write_bytes(gzip.compress(_mutate(plain, ops), compresslevel=1))
    _replays_or_refuses(path)
