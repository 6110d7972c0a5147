"""The kernel-matrix driver's reading of doctor reports and JUnit results,
from which the README's Tested kernels table is made."""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("kernel_matrix", os.path.join(ROOT, "scripts", "kernel_matrix.py"))
km = importlib.util.module_from_spec(spec)
sys.modules["kernel_matrix"] = km  # its dataclasses look their module up
spec.loader.exec_module(km)

DOCTOR = """\
kernel        6.1.0-56-amd64 x86_64

syscalls collector (every rung is tried, then released)
  [chosen] raw tracepoints (raw_tracepoint: sys_exit, sys_enter) 4.07s
  [works ] raw_syscalls tracepoints (tracepoint: raw_syscalls:sys_exit, raw_syscalls:sys_enter) 3.88s

disk collector (every rung is tried, then released)
  [fails ] block_rq tracepoints (tracepoint: block:block_rq_issue, block:block_rq_complete) 1.21s
           R2 unbounded memory access
  [chosen] kprobes (kprobe: blk_mq_start_request, [__]blk_account_io_done) 0.00s

disk collector (--disk-queued) (every rung is tried, then released)
  [chosen] block_rq_insert + block_rq tracepoints (tracepoint: block:block_rq_insert) 0.97s

tcp collector (every rung is tried, then released)
  [works ] inet_sock_set_state tracepoint, ring buffer (tracepoint: sock:inet_sock_set_state) 1.73s

cache collector (every rung is tried, then released)
  [chosen] kprobes (counts calls, as cachetop: one per folio) (kprobe: folio_mark_accessed, filemap_add_folio) 0.1s
  [works ] tracepoints (counts pages: accesses = pages) (tracepoint: filemap:mm_filemap_get_pages) 3.64s
"""

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.test_disk_bpf" name="test_a[x]" time="1"/>
<testcase classname="tests.test_disk_bpf" name="test_b" time="1"><failure message="assert 4999 ==
   5000">x</failure></testcase>
<testcase classname="tests.test_disk_bpf" name="test_c" time="1"><skipped message="not here"/></testcase>
<testcase classname="tests.test_exit_paths" name="test_d" time="1"/>
<testcase classname="tests.test_tcp_bpf" name="test_e" time="1"><error message="boom"/></testcase>
</testsuite></testsuites>
"""


def test_chosen_hooks_of_every_hook_kind():
    text = DOCTOR.replace("[chosen] raw tracepoints (raw_tracepoint:", "[chosen] BTF raw tracepoints (tp_btf:")
    assert km.chosen_hooks(text)["syscalls"] == "BTF raw tracepoints"


def test_chosen_hooks_first_section_per_collector_and_none_when_nothing_chosen():
    hooks = km.chosen_hooks(DOCTOR)
    assert hooks == {
        "syscalls": "raw tracepoints",
        "disk": "kprobes",  # not the --disk-queued section's
        "cache": "kprobes (counts calls, as cachetop: one per folio)",
    }
    assert "tcp" not in hooks


def test_recorded_hooks_first_line_per_tab_wins():
    text = "syscalls\traw tracepoints\ncache\tkprobes\nsyscalls\traw_syscalls tracepoints\nnot a line\ntcp\t\n"
    assert km.recorded_hooks(text) == {"syscalls": "raw tracepoints", "cache": "kprobes"}


def test_junit_counts_per_file_and_failed_ids(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    per, failed = km.junit_counts(path)
    assert per["test_disk_bpf"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert per["test_exit_paths"] == {"passed": 1, "failed": 0, "skipped": 0}
    assert per["test_tcp_bpf"] == {"passed": 0, "failed": 1, "skipped": 0}
    # With the reason on one line: the matrix prints them last, for a CI
    # log's tail.
    assert failed == ["test_disk_bpf::test_b: assert 4999 == 5000", "test_tcp_bpf::test_e: boom"]


def test_table_rows_name_each_tab_its_hook_and_its_tests(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    per, _ = km.junit_counts(path)
    rows = {r[1]: r for r in km.rows_for("6.1", per, km.chosen_hooks(DOCTOR))}
    assert rows["disk"] == ("6.1", "disk", "kprobes", "1/2 (1 skipped)")
    assert rows["tcp"] == ("6.1", "tcp", "none loaded", "0/1")
    assert rows["cache"][2] == "kprobes"
    assert rows["other tests (exit cleanup, doctor, ...)"][3] == "1/1"
    md = km.table(list(rows.values()))
    assert md.splitlines()[0] == "| kernel | tab | chosen hook | tests passed |"
