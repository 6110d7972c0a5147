"""The cache tab's arithmetic and plumbing without BPF: the cachestat
formula and its clamping, interval deltas, filters, hook choice, meminfo,
text and JSON."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpftop.bpf import system
from bpftop.collectors import cache_hooks
from bpftop.collectors.cache import compile_comm_filter, process_rows, read_meminfo
from bpftop.model.cache import CacheCounts, CacheRow, CacheSnapshot, cache_stats
from bpftop.procfs import KeptFile
from bpftop.render import cache as render

counters = st.integers(min_value=-(10**6), max_value=10**12)


def test_cold_read_is_all_misses():
    s = cache_stats(CacheCounts(accesses=16384, added=16384))
    assert (s.total, s.hits, s.misses, s.dirties) == (16384, 0, 16384, 0)
    assert s.read_hit_pct == 0.0 and s.write_hit_pct is None


def test_warm_read_is_all_hits():
    s = cache_stats(CacheCounts(accesses=16384))
    assert (s.hits, s.misses, s.read_hit_pct) == (16384, 0, 100.0)


def test_pages_added_for_writes_are_not_read_misses():
    # A new file written: every dirtied page was added first.
    s = cache_stats(CacheCounts(accesses=100, added=16384, dirtied=16384))
    assert (s.hits, s.misses, s.dirties) == (100, 0, 16384)
    assert s.write_hit_pct == 0.0
    # A cached file rewritten: nothing added.
    assert cache_stats(CacheCounts(dirtied=50)).write_hit_pct == 100.0
    # Half of the dirtied pages were cached already.
    assert cache_stats(CacheCounts(added=50, dirtied=100)).write_hit_pct == 50.0


def test_readahead_beyond_the_reads_clamps_misses_to_total():
    # cachestat: "if hits < 0, misses are overestimated (readahead)".
    s = cache_stats(CacheCounts(accesses=10, added=64))
    assert (s.total, s.hits, s.misses, s.read_hit_pct) == (10, 0, 10, 0.0)


def test_buffer_dirties_are_not_reads():
    s = cache_stats(CacheCounts(accesses=10, buffer_dirties=30))
    assert s.total == 0 and s.hits == 0 and s.read_hit_pct is None


def test_nothing_to_divide_gives_none_not_zero():
    s = cache_stats(CacheCounts())
    assert s.read_hit_pct is None and s.write_hit_pct is None


@given(counters, counters, counters, counters)
def test_never_negative_never_above_100(a, b, n, d):
    s = cache_stats(CacheCounts(a, b, n, d))
    assert s.hits >= 0 and s.misses >= 0 and s.total >= 0 and s.dirties >= 0
    assert s.hits + s.misses == s.total
    for pct in (s.read_hit_pct, s.write_hit_pct):
        assert pct is None or 0.0 <= pct <= 100.0
    assert (s.read_hit_pct is None) == (s.total == 0)


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_pure_reads_split_exactly(accesses, added):
    s = cache_stats(CacheCounts(accesses=accesses, added=added))
    assert s.misses == min(accesses, added)
    assert s.hits == accesses - min(accesses, added)


def test_counts_arithmetic():
    a, b = CacheCounts(5, 1, 7, 2), CacheCounts(2, 1, 3, 0)
    assert a.minus(b) == CacheCounts(3, 0, 4, 2)
    assert a.minus(b).plus(b) == a
    assert CacheCounts().empty and not CacheCounts(dirtied=1).empty


def test_process_rows_are_interval_deltas_with_comm_filter():
    current = {
        1: (CacheCounts(100, 0, 10, 0), 0, "reader"),
        2: (CacheCounts(50, 0, 0, 0), 1000, "idle"),
        3: (CacheCounts(0, 0, 8, 8), 1000, "writer"),
    }
    previous = {1: CacheCounts(40, 0, 10, 0), 2: CacheCounts(50, 0, 0, 0)}
    rows = process_rows(current, previous)
    assert [r.pid for r in rows] == [1, 3]  # 2 did nothing this interval
    assert rows[0].counts == CacheCounts(60, 0, 0, 0) and rows[0].hits == 60
    assert rows[1].uid == 1000 and rows[1].dirties == 8
    only = process_rows(current, previous, compile_comm_filter("^wri"))
    assert [r.comm for r in only] == ["writer"]


def test_comm_filter_errors_are_one_clear_message():
    assert compile_comm_filter(None) is None and compile_comm_filter("") is None
    with pytest.raises(ValueError, match="not a valid regular expression"):
        compile_comm_filter("[")
    with pytest.raises(ValueError, match="must be a string"):
        compile_comm_filter(3)


def test_meminfo(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal: 100 kB\nBuffers:     2048 kB\nCached:   1048576 kB\nSwapCached: 0 kB\n")
    assert read_meminfo(KeptFile(str(f))) == (2.0, 1024.0)
    assert read_meminfo(KeptFile(str(tmp_path / "absent"))) == (None, None)
    buffers, cached = read_meminfo()
    assert buffers is not None and cached is not None and cached > 0


# -- hook choice -----------------------------------------------------------------


def test_function_choice_prefers_new_names_and_falls_back():
    new = cache_hooks.choose_functions(
        lambda names: {"folio_mark_accessed", "mark_page_accessed", "filemap_add_folio",
                       "folio_account_dirtied", "mark_buffer_dirty"},
        tracepoint=lambda c, e: True,
    )
    assert new.chosen == {"access": "folio_mark_accessed", "add": "filemap_add_folio",
                          "dirtied": "folio_account_dirtied", "bufdirty": "mark_buffer_dirty"}
    assert new.missing() == "" and new.defines() == {"ACCESS_FN": 1, "ADD_FN": 1, "DIRTY_FN": 1}
    assert new.defines_for_dirty() == {}
    old = cache_hooks.choose_functions(
        lambda names: {"mark_page_accessed", "add_to_page_cache_lru", "account_page_dirtied", "mark_buffer_dirty"},
        tracepoint=lambda c, e: False,
    )
    assert old.defines() == {"ACCESS_FN": 2, "ADD_FN": 2, "DIRTY_FN": 2} and old.missing() == ""


def test_inlined_dirty_function_uses_its_tracepoint_or_fails_with_a_reason():
    have = {"folio_mark_accessed", "filemap_add_folio", "mark_buffer_dirty"}  # 6.18: inlined
    via_tp = cache_hooks.choose_functions(lambda names: have, tracepoint=lambda c, e: e == "writeback_dirty_folio")
    assert via_tp.missing() == "" and via_tp.dirty_via_tracepoint
    assert via_tp.defines_for_dirty() == {"DIRTY_VIA_TP": 1, "DIRTY_TP_FOLIO": 1}
    assert "writeback:writeback_dirty_folio" in via_tp.hooks()[2]
    none = cache_hooks.choose_functions(lambda names: have, tracepoint=lambda c, e: False)
    assert "no kernel function for dirtied" in none.missing()
    assert "(dirtied: none)" in none.hooks()


def test_kernel_symbols_reads_text_symbols_only(tmp_path):
    f = tmp_path / "kallsyms"
    f.write_text(
        "ffffffff81000000 T mark_page_accessed\n"
        "ffffffff81000010 t filemap_add_folio\n"
        "ffffffff81000020 D mark_buffer_dirty\n"
        "ffffffff81000030 T folio_mark_accessed [somemod]\n"
    )
    got = system.kernel_symbols(["mark_page_accessed", "filemap_add_folio", "mark_buffer_dirty",
                                 "folio_mark_accessed"], str(f))
    assert got == {"mark_page_accessed", "filemap_add_folio", "folio_mark_accessed"}


FIELDS_618 = {
    ("filemap", "mm_filemap_get_pages"): {"i_ino", "s_dev", "index", "last_index"},
    ("filemap", "mm_filemap_map_pages"): {"i_ino", "s_dev", "index", "last_index"},
    ("filemap", "mm_filemap_fault"): {"i_ino", "s_dev", "index"},
    ("filemap", "mm_filemap_add_to_page_cache"): {"pfn", "i_ino", "index", "s_dev", "order"},
    ("writeback", "writeback_dirty_folio"): {"name", "ino", "index"},
}


def test_tracepoint_plan_on_this_kind_of_kernel():
    plan = cache_hooks.plan_tracepoints(lambda c, e: FIELDS_618.get((c, e)))
    assert plan.problem == "" and plan.add_has_order and plan.mmap and plan.dirty_folio
    assert plan.hooks[0] == "filemap:mm_filemap_get_pages" and "writeback:writeback_dirty_folio" in plan.hooks


def test_tracepoint_plan_on_older_kernels():
    older = {k: v for k, v in FIELDS_618.items() if k[1] != "mm_filemap_get_pages"}
    assert "mm_filemap_get_pages not found (added in Linux 6.11)" in cache_hooks.plan_tracepoints(
        lambda c, e: older.get((c, e))).problem
    no_order = dict(FIELDS_618)
    no_order[("filemap", "mm_filemap_add_to_page_cache")] = {"pfn", "i_ino", "index", "s_dev"}
    del no_order[("writeback", "writeback_dirty_folio")]
    no_order[("writeback", "writeback_dirty_page")] = {"name", "ino", "index"}
    plan = cache_hooks.plan_tracepoints(lambda c, e: no_order.get((c, e)))
    assert plan.problem == "" and not plan.add_has_order and not plan.dirty_folio
    assert "writeback:writeback_dirty_page" in plan.hooks


@pytest.mark.bpf  # reads tracefs, which only root may mount and read
def test_tracepoint_fields_parses_a_real_format():
    fields = cache_hooks.tracepoint_fields("filemap", "mm_filemap_add_to_page_cache")
    if fields is None:
        pytest.skip("no filemap tracepoints on this kernel")
    assert {"i_ino", "index", "common_pid"} <= fields
    assert cache_hooks.tracepoint_fields("filemap", "no_such_event") is None


# -- text and JSON -----------------------------------------------------------------


def snap(**kw):
    base = dict(
        interval_s=2.0,
        taken_at=0.0,
        rows=(
            CacheRow(10, 0, "cat", CacheCounts(accesses=16384, added=16384)),
            CacheRow(20, 1000, "postgres", CacheCounts(accesses=500)),
            CacheRow(30, 0, "dd", CacheCounts(added=256, dirtied=256)),
        ),
        totals=CacheCounts(accesses=16884, added=16640, dirtied=256),
        buffers_mb=12.4,
        cached_mb=2048.0,
        pid_filter=(10, 20, 30),
        hook="tracepoints",
    )
    base.update(kw)
    return CacheSnapshot(**base)


def test_text_is_the_table_sorted_by_hits():
    text = render.to_text(snap(comm_filter="^c"))
    lines = text.splitlines()
    assert lines[0].startswith("bpftop cache") and "hook: tracepoints" in lines[0]
    assert "filter: pid=10 pid=20 pid=30 comm~^c" in lines[0]
    assert lines[1] == (
        "hit 3.0%  Buffers 12 MB  Cached 2048 MB  pages: 16884 read  500 hit  16384 miss  256 dirtied"
    )
    header = next(ln for ln in lines if ln.lstrip().startswith("PID"))
    assert header.split() == ["PID", "UID", "COMM", "HITS", "MISSES", "DIRTIES", "READ_HIT%", "WRITE_HIT%"]
    body = text[text.index("WRITE_HIT%"):]
    assert body.index("postgres") < body.index("cat") < body.index("dd")  # ties keep their order
    cat = next(ln for ln in lines if " cat " in ln)
    assert cat.split() == ["10", "0", "cat", "0", "16384", "0", "0.0", "-"]
    dd = next(ln for ln in lines if " dd " in ln)
    assert dd.split() == ["30", "0", "dd", "0", "0", "256", "-", "0.0"]
    assert "\x1b" not in text


def lines_of(text):
    return text.splitlines()


def test_empty_snapshot_says_so():
    text = render.to_text(snap(rows=(), totals=CacheCounts(), pid_filter=()))
    assert "(no activity)" in text
    assert lines_of(text)[1].startswith("hit -  ")
    assert "(no activity (filtered))" in render.to_text(snap(rows=(), comm_filter="x"))


def test_json_fields_of_the_contract():
    d = render.to_dict(snap())
    json.dumps(d)
    assert d["tab"] == "cache" and d["interval_s"] == 2.0 and d["unit"] == "pages"
    rows = {r["pid"]: r for r in d["rows"]}
    assert rows[10] == {
        "pid": 10, "uid": 0, "comm": "cat", "hits": 0, "misses": 16384, "dirties": 0,
        "read_hit_pct": 0.0, "write_hit_pct": None,
        "accesses": 16384, "buffer_dirties": 0, "added": 16384, "dirtied": 0,
    }
    assert rows[30]["write_hit_pct"] == 0.0 and rows[30]["read_hit_pct"] is None
    assert d["totals"] == {
        "accesses": 16884, "hits": 500, "misses": 16384, "dirties": 256,
        "hit_ratio_pct": 2.96, "buffers_mb": 12.4, "cached_mb": 2048.0,
    }
    assert d["pid_filter"] == {"pids": [10, 20, 30], "exclude": False}
