"""Disk tab without BPF: log2 units, percentile math, disk names, rendering."""

import json

import pytest

from bpftop.collectors import disknames
from bpftop.collectors.disk import Counter, DiskCollector, disk_rows
from bpftop.model.disk import NSLOTS, DiskRow, DiskSnapshot, OpStats, percentile, slot_high_us, slot_low_us, slot_of_us
from bpftop.render import disk as render


def hist(**slots):
    h = [0] * NSLOTS
    for k, v in slots.items():
        h[int(k[1:])] = v
    return tuple(h)


def test_slots_are_log2_microseconds():
    assert [slot_of_us(u) for u in (0, 0.9, 1, 2, 3, 4, 7, 8, 1023, 1024)] == [0, 0, 1, 2, 2, 3, 3, 4, 10, 11]
    assert (slot_low_us(0), slot_high_us(0)) == (0, 1)
    assert (slot_low_us(1), slot_high_us(1)) == (1, 2)
    assert (slot_low_us(11), slot_high_us(11)) == (1024, 2048)
    assert slot_of_us(10**12) == NSLOTS - 1
    for us in (1, 5, 100, 3000):
        assert slot_low_us(slot_of_us(us)) <= us < slot_high_us(slot_of_us(us))


def test_percentiles_interpolate_inside_the_bucket():
    h = hist(s7=100)  # all in [64, 128) us
    assert percentile(h, 0.5) == pytest.approx(96.0)
    assert percentile(h, 0.0) == 64.0
    assert percentile(h, 1.0) == 128.0
    # The true max caps the estimate and narrows the top bucket.
    assert percentile(h, 0.99, max_us=80.0) == pytest.approx(64 + 16 * 0.99)
    h = hist(s5=90, s11=10)  # 90 in [16,32), 10 in [1024,2048)
    assert 16 <= percentile(h, 0.5) < 32
    assert 16 <= percentile(h, 0.9) <= 32
    assert 1024 <= percentile(h, 0.99) < 2048
    assert percentile((0,) * NSLOTS, 0.5) is None
    with pytest.raises(ValueError):
        percentile(h, 1.5)


def op(name, ios, slots, max_ns=None, nbytes=None):
    return OpStats(name, ios, ios * 4096 if nbytes is None else nbytes, sum(slots), sum(slots) * 50_000, max_ns, slots)


def snap(**kw):
    rows = (
        DiskRow("vda", "254:0", (op("read", 100, hist(s6=90, s7=10), 120_000), op("write", 10, hist(s9=10), 400_000),
                                 op("flush", 2, hist(s10=2), 900_000, 0)), in_flight=3),
        DiskRow("sdb", "8:16", (op("read", 5, hist(s12=5), 3_000_000),)),
    )
    base = dict(interval_s=2.0, taken_at=0.0, rows=rows, cumulative=rows, cumulative_s=10.0, hook="block_rq tracepoints")
    base.update(kw)
    return DiskSnapshot(**base)


def test_disk_row_sums_and_percentiles():
    r = snap().rows[0]
    assert (r.ios, r.reads, r.writes, r.flushes, r.discards) == (112, 100, 10, 2, 0)
    assert r.bytes == 110 * 4096
    assert sum(r.hist()) == 112 and sum(r.hist("write")) == 10
    assert r.max_ns() == 900_000 and r.max_ns("read") == 120_000
    assert 32 <= r.p50_us < 64
    assert 256 <= r.p99_us <= 900


def test_text_has_table_and_biolatency_histogram():
    text = render.to_text(snap())
    lines = text.splitlines()
    assert lines[0].startswith("bpftop disk") and "hook: block_rq tracepoints" in lines[0]
    assert lines[1].startswith("117 I/Os (58/s)")
    assert lines[3].split() == ["DISK", "IOPS", "R/s", "W/s", "MB/s", "P50", "us", "P99", "us", "INFL", "QD"]
    vda = next(line for line in lines if line.startswith("vda "))
    assert vda.split()[:4] == ["vda", "56.0", "50.0", "5.0"]
    assert text.index("disk = vda") < text.index("disk = sdb")
    hist_head = next(i for i, line in enumerate(lines) if "usecs" in line and "distribution" in line)
    assert lines[hist_head].index(":") == lines[hist_head + 1].index(":")
    assert lines[hist_head + 1].split()[:5] == ["32", "->", "63", ":", "90"]
    assert lines[hist_head + 1].endswith("|" + "*" * 40 + "|")
    assert "\x1b" not in text


def test_milliseconds_and_cumulative():
    s = snap()
    t = render.table(s, unit="ms", cumulative=True)
    assert [c.header for c in t.columns][5] == "P50 ms"
    assert t.rows[0][1] == pytest.approx(11.2)  # 112 I/Os over 10 s
    assert "msecs" in "\n".join(render.hist_text(s.rows[0].hist(), "ms"))
    assert render.fmt_latency("ms")(1500.0) == "1.500"


def test_json_fields_of_the_contract():
    d = render.to_dict(snap(disk_filter=("vda",), op_filter=("read",), op_exclude=True))
    json.dumps(d)
    r = d["rows"][0]
    assert d["tab"] == "disk" and d["interval_s"] == 2.0 and d["latency"] == "device"
    assert {k: r[k] for k in ("disk", "ios", "reads", "writes", "bytes")} == {
        "disk": "vda", "ios": 112, "reads": 100, "writes": 10, "bytes": 110 * 4096}
    assert r["hist"] == {"32": 90, "64": 10, "256": 10, "512": 2}
    assert 32 <= r["p50_us"] < 64 and r["p99_us"] <= r["max_us"] == 900.0
    assert r["ops"]["read"]["hist"] == {"32": 90, "64": 10}
    assert d["disk_filter"] == {"disks": ["vda"], "exclude": False}
    assert d["op_filter"] == {"ops": ["read"], "exclude": True}


def test_empty_snapshot_says_so():
    text = render.to_text(snap(rows=(), cumulative=()))
    assert "(no I/O)" in text and "0 I/Os" in text


def test_disk_rows_are_deltas_against_the_base():
    cur = {(1, 0): Counter(10, 40960, 10, 500, hist(s3=10)), (1, 1): Counter(5, 0, 5, 5, hist(s1=5))}
    base = {(1, 0): Counter(4, 16384, 4, 200, hist(s3=4)), (1, 1): Counter(5, 0, 5, 5, hist(s1=5))}
    names = disknames.BlockDevices({1: "vdz"}, {})
    (row,) = disk_rows(cur, base, {(1, 0): 999}, [1], names, {1: 2})
    assert row.disk == "vdz" and row.dev == "0:1" and row.in_flight == 2
    assert [o.op for o in row.ops] == ["read"]  # write had nothing new
    assert row.ios == 6 and row.bytes == 24576 and row.hist()[3] == 6 and row.max_ns() == 999


def test_names_resolve_from_sysfs_and_partitions(tmp_path):
    sys_block = tmp_path / "block"
    for name, dev in (("vda", "254:0"), ("nvme0n1", "259:0")):
        (sys_block / name).mkdir(parents=True)
        (sys_block / name / "dev").write_text(dev + "\n")
    (sys_block / "vda" / "vda1").mkdir()
    (sys_block / "vda" / "vda1" / "partition").write_text("1\n")
    names = disknames.scan(str(sys_block), str(tmp_path / "none"))
    assert names.resolve(["vda", "/dev/nvme0n1"]) == (("nvme0n1", 259 << 20), ("vda", 254 << 20))
    assert names.resolve(["254:0"]) == (("vda", 254 << 20),)
    with pytest.raises(ValueError, match=r"vda1 is a partition of vda.*disk=vda"):
        names.resolve(["vda1"])
    with pytest.raises(ValueError, match=r"no disk named 'sdq' \(disks: nvme0n1, vda\)"):
        names.resolve(["sdq"])
    assert names.name(7 << 20 | 3) == "7:3"


def test_names_from_proc_partitions_without_sysfs(tmp_path):
    parts = tmp_path / "partitions"
    parts.write_text("major minor  #blocks  name\n\n 254 0 100 vda\n 254 1 50 vda1\n")
    names = disknames.scan(str(tmp_path / "nosys"), str(parts))
    assert names.disks == {254 << 20: "vda"} and names.partitions == {"vda1": "vda"}


def test_collector_filters_validate_without_bpf():
    c = DiskCollector()
    with pytest.raises(ValueError, match="no disk named"):
        c.set_kernel_filter("disk", ["definitely-not-a-disk"])
    with pytest.raises(ValueError, match="no operation 'reed'"):
        c.set_kernel_filter("op", ["reed"])
    with pytest.raises(ValueError, match="every operation"):
        c.set_kernel_filter("op", ["read", "write", "flush", "discard", "other"], exclude=True)
    assert c.disk_filter == () and c.op_filter == ()
    c.set_kernel_filter("op", ["write", "read"])
    assert c.op_filter == ("read", "write") and c.op_mask() == 0b11
    c.set_kernel_filter("op", ["read"], exclude=True)
    assert c.op_mask() == 0b11110
