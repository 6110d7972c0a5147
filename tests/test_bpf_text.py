"""The BPF tab's text and JSON renderers and its arithmetic (no BPF, no root)."""

import json

import pytest
from bpf_tab_fakes import bpf_snapshot

from bpftop.filters import parse
from bpftop.model.bpf import Cost
from bpftop.render.bpf import detail_lines, table, to_dict, to_text
from bpftop.tabs import TABS


def test_cost_figures():
    c = Cost(runs=200, run_ns=1_000_000, interval_s=2.0)
    assert c.avg_ns == 5000 and c.events_per_s == 100 and c.cpu_pct == pytest.approx(0.05)
    assert Cost(0, 0, 1.0).avg_ns is None


def test_text_has_totals_own_mark_and_escapes_names():
    text = TABS["bpf"].to_text(bpf_snapshot())
    lines = text.splitlines()
    assert lines[1].startswith("3 programs  BPF CPU 0.54%  stats on (sysctl)")
    assert "* = bpftop's own (1)" in lines[1]
    row10 = next(ln for ln in lines if ln.split()[:1] == ["10"])
    assert row10.split()[1] == "*" and "raw_tracepoint sys_exit" in row10
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b[2Jname" in text and "sh\\x07ell,sshd" in text
    # Sorted by CPU%: the XDP program (5 ms in 1 s) first.
    assert [ln.split()[0] for ln in lines[4:7]] == ["11", "10", "12"]


def test_a_reading_over_a_long_interval_says_how_long():
    """The console reads the BPF tab only while it is shown: the first
    reading on return covers the time away, and says so."""
    import dataclasses

    snap = dataclasses.replace(bpf_snapshot(), interval_s=254.4)
    assert "BPF CPU 0.54% over 254s  stats on" in to_text(snap)
    assert " over " not in to_text(bpf_snapshot()).splitlines()[1]


def test_stats_off_reads_stats_off_not_zero():
    snap = bpf_snapshot(stats=False)
    text = to_text(snap)
    assert "BPF CPU stats off" in text and "stats off (--bpf-stats switches them on)" in text
    row = next(ln for ln in text.splitlines() if ln.split()[:1] == ["11"])
    assert row.split()[3:7] == ["off"] * 4  # id, type, name, then RUNS to CPU%
    out = to_dict(snap)
    assert all(r["runs"] is None and r["run_ns"] is None for r in out["rows"])
    assert out["totals"]["cpu_pct"] is None and out["totals"]["stats"] == "off"


def test_json_rows_and_totals():
    out = json.loads(json.dumps(to_dict(bpf_snapshot())))
    assert out["tab"] == "bpf" and out["interval_s"] == 1.0
    r = next(r for r in out["rows"] if r["id"] == 12)
    assert r["owners"] == [{"pid": 77, "comm": "sh\x07ell", "source": "fdinfo"},
                           {"pid": 78, "comm": "sshd", "source": "fdinfo"}]
    assert r["name"] == "evil\x1b[2Jname" and r["attach"] == [] and r["runs"] == 0
    r10 = next(r for r in out["rows"] if r["id"] == 10)
    assert r10["runs"] == 1000 and r10["run_ns"] == 400_000 and r10["ours"]
    assert r10["maps"] == [{"id": 5, "type": "hash", "name": "counts", "max_entries": 1024, "entries": 3,
                            "entries_complete": True, "memlock": 81920}]
    assert out["totals"] == {"programs": 3, "cpu_pct": 0.54, "maps": 1, "map_bytes": 81920, "stats": "on",
                             "stats_how": "sysctl", "stats_note": ""}


def test_detail_lines_show_maps_owners_and_escape():
    snap = bpf_snapshot()
    lines = detail_lines(snap, snap.rows[2])
    assert "\x1b" not in "".join(lines)
    assert any(ln.startswith("owners (fdinfo): 77 sh\\x07ell [fdinfo], 78 sshd") for ln in lines)
    assert "attach: - (the kernel reports none)" in lines and "maps: none" in lines
    first = detail_lines(snap, snap.rows[0])
    assert "  5  hash  counts  entries 3/1024  memlock 80.0 KiB" in first


@pytest.mark.parametrize("text, ids", [
    ("name~xdp", [11]),
    ("type=socket_filter", [12]),
    ("pid=78", [12]),
    ("pid!=78", [10, 11]),
    ("comm~cilium", [11]),
    ("comm!~sshd", [10, 11]),
    ("attach~sys_exit", [10]),
    ("attach~eth0 pid=4242", [11]),
    ("cpu_pct>0.1", [11]),
    ("cpu_pct<0.1", [10, 12]),
])
def test_filters_on_names_types_owners_and_attach_points(text, ids):
    t = parse(text).apply(table(bpf_snapshot()))
    assert sorted(row[0] for row in t.rows) == sorted(ids)


def test_every_column_sorts():
    t = table(bpf_snapshot())
    for i in range(len(t.columns)):
        assert sorted(r[0] for r in t.sorted_by(i).rows) == [10, 11, 12]
        assert sorted(r[0] for r in t.sorted_by(i, reverse=True).rows) == [10, 11, 12]


def test_hostile_names_replayed_from_a_recording_are_escaped(tmp_path):
    """A recording carries program names and owners' comms as they were:
    replayed as text they are escaped, as JSON they are the originals."""
    import subprocess
    import sys

    from bpftop.recording.file import Recorder, header

    path = tmp_path / "bpf.bpftop"
    rec = Recorder(str(path), lambda: header(["bpf"], 1.0, {"bpf": "fake"}, {}))
    rec.write_many([("bpf", bpf_snapshot(0))])
    rec.close()
    text = subprocess.run([sys.executable, "-m", "bpftop", "--replay", str(path), "--once", "--tab", "bpf"],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    assert "\x1b" not in text.stdout and "\x07" not in text.stdout and "evil\\x1b[2Jname" in text.stdout
    js = subprocess.run([sys.executable, "-m", "bpftop", "--replay", str(path), "--once", "--json", "--tab", "bpf"],
                        capture_output=True, text=True, timeout=60)
    assert js.returncode == 0, js.stderr
    names = {r["name"] for r in json.loads(js.stdout)["rows"]}
    assert "evil\x1b[2Jname" in names
