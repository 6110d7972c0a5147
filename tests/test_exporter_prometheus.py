"""``bpftop exporter`` scraped by a real Prometheus (Debian's package, its
own binary on loopback, not the service), checked through Prometheus's HTTP
API against work of known size: exact for one child's syscalls and TCP
connects (the exporter filters on its pid in the kernel), within the Disk
tab tests' rule for O_DIRECT reads against /proc/diskstats. Then one probe
is switched off (the config's ``probes``, re-read on SIGHUP): its attached
gauge drops to 0 while the others keep serving. SIGTERM ends it with exit 0
and no program left behind.

One exporter and one Prometheus for every check, to keep the time modest.
Host only: four compiles are too many for the kernel matrix's guests.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import pytest
from bpfprogs import held_prog_ids, prog_ids, wait_until_gone
from connects import Connector
from disk_workload import DiskWorkload, diskstats
from testenv import scaled

from bpftop.tabs import TABS

pytestmark = pytest.mark.bpf

PROMETHEUS = "/usr/bin/prometheus"
N = 5000  # getppid calls
N4, N6, J = 30, 20, 15  # IPv4 and IPv6 connects to listeners, and J to a closed port (refused)
READS = 2000  # O_DIRECT reads

def self_signed(tmp):
    """A certificate for 127.0.0.1 and its key, which Prometheus is told to trust."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bpftop",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Prom:
    """Prometheus's own binary with a temporary storage and one scrape job."""

    def __init__(self, tmp, target, ca_file):
        self.port = free_port()
        cfg = tmp / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
            "scrape_configs:\n  - job_name: bpftop\n    scheme: https\n"
            f"    tls_config:\n      ca_file: {ca_file}\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self.log = open(tmp / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp)
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                get(self.url + "/-/ready", timeout=1)
                return True
            except OSError:
                time.sleep(0.2)
        return False

    def query(self, expr, at=None):
        """{frozenset of labels (without job, instance, __name__): value} of
        an instant query, now or ``at`` (Unix time)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = repr(at)
        out = json.loads(get(self.url + "/api/v1/query?" + urllib.parse.urlencode(params)))
        assert out["status"] == "success", out
        return {frozenset((k, v) for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")):
                float(r["value"][1])
                for r in out["data"]["result"]}

    def one(self, expr, default=0.0, at=None):
        values = list(self.query(expr, at).values())
        assert len(values) <= 1, (expr, values)
        return values[0] if values else default

    def snapshot(self, queries):
        """Each query's single value, all from the same moment (one scrape)."""
        at = time.time()
        return {k: self.one(v, at=at) for k, v in queries.items()}

    def wait(self, what, check, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.25)
        raise AssertionError(f"Prometheus never showed {what} (last: {last!r}); exporter targets: "
                             f"{get(self.url + '/api/v1/targets')[:2000]}")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(scaled(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class DiskstatsSampler:
    """/proc/diskstats of one disk every 10 ms with its time, to bracket
    the exporter's collection times."""

    def __init__(self, disk):
        self.disk, self.samples, self.stop = disk, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            t = time.time()
            self.samples.append((t, diskstats(self.disk), time.time()))
            time.sleep(0.01)

    def before(self, t):
        """The last reading finished before ``t``."""
        return [s for s in self.samples if s[2] <= t][-1][1]

    def after(self, t):
        """The first reading begun after ``t``."""
        return next(s for s in self.samples if s[0] >= t)[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not os.path.exists(PROMETHEUS):
        pytest.skip("Debian's prometheus package is not installed (scripts/setup.sh --test installs it)")
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (it makes the exporter's test certificate)")
    tmp = tmp_path_factory.mktemp("exporter")
    cert, key = self_signed(tmp)
    (tmp / "xdg" / "bpftop").mkdir(parents=True)
    user_cfg = tmp / "xdg" / "bpftop" / "config.toml"
    user_cfg.write_text("[exporter]\nper_process = true\ntop_n = 5\n")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "xdg"), BPFTOP_SYSTEM_CONFIG=str(tmp / "none.toml"))
    before = prog_ids()
    child = Connector()
    closed = child.closed
    listen = f"127.0.0.1:{free_port()}"
    err = open(tmp / "exporter.err", "w+")
    exporter = subprocess.Popen(
        [sys.executable, "-m", "bpftop", "exporter", "--listen", listen, "-d", "0.5", "-p", str(child.pid),
         "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.DEVNULL, stderr=err, env=env)
    prom = Prom(tmp, listen, cert)
    try:
        assert prom.ready(scaled(30)), (tmp / "prometheus.log").read_text()
        tabs = prom.wait("every collector attached", lambda: (
            (att := prom.query("bpftop_collector_attached")) and len(att) == len(TABS) and all(v == 1 for v in att.values())
            and att), scaled(90))
        yield dict(listen=listen, prom=prom, child=child, closed=closed, exporter=exporter, before=before, err=err, cfg=user_cfg,
                   tabs=[dict(k)["tab"] for k in tabs])
    finally:
        prom.close()
        if exporter.poll() is None:
            exporter.kill()
            exporter.wait()
        child.close()
        child.__exit__(None, None, None)
        err.close()
        shutil.rmtree(tmp / "data", ignore_errors=True)


def collected_since(prom, t, tabs):
    """True once Prometheus holds, for every tab, a scrape of an interval
    that ended after ``t``."""
    def check():
        got = {dict(k)["tab"]: v for k, v in prom.query("bpftop_collector_last_collection_timestamp_seconds").items()}
        return all(got.get(tab, 0) > t for tab in tabs)
    return check


def settle(s, tabs):
    """Wait until Prometheus has every tab's numbers from after now."""
    t = time.time()
    s["prom"].wait(f"an interval after {t}", collected_since(s["prom"], t, tabs), scaled(20))


def test_served_over_tls_only(setup):
    """Prometheus scraped it over HTTPS, verifying the certificate (the
    fixture waited for that); plain HTTP gets no metrics."""
    with pytest.raises((OSError, http.client.HTTPException)):
        get(f"http://{setup['listen']}/metrics", timeout=3)


def test_attached_gauges_and_info(setup):
    prom = setup["prom"]
    assert sorted(setup["tabs"]) == sorted(TABS)
    info = prom.query("bpftop_collector_info")
    assert {dict(k)["tab"] for k in info} == set(setup["tabs"])
    assert all(dict(k)["hook"] and dict(k)["unit"] and dict(k)["state"] == "running" for k in info)
    assert prom.one('up{job="bpftop"}') == 1
    # Program run counts and the collection's own cost are there and grow.
    assert prom.one('sum(bpftop_program_runs_total{tab="syscalls"})') > 0
    assert prom.one("sum(bpftop_collection_reads_total)") > 0
    assert prom.one("sum(bpftop_collection_errors_total)") == 0


def test_syscalls_and_tcp_exact(setup):
    prom, child, tabs = setup["prom"], setup["child"], ["syscalls", "tcp"]
    settle(setup, tabs)
    q_calls = 'bpftop_syscalls_total{syscall="getppid"}'
    q_errs = 'bpftop_syscall_errors_total{syscall="getppid"}'
    q_proc = f'bpftop_process_syscalls_total{{pid="{child.pid}"}}'
    q_out = "bpftop_tcp_connects_total"
    q_att = "bpftop_tcp_connect_attempts_total"
    q_lat = "bpftop_tcp_connect_latency_seconds_count"
    q_dst = f'bpftop_tcp_destination_connect_attempts_total{{dport="{setup["closed"]}"}}'
    b = {q: prom.query(q) for q in (q_out, q_att)}
    b1 = prom.snapshot({q: q for q in (q_calls, q_errs, q_proc, q_lat, q_dst)})
    child.syscalls(N)
    child.run(N4, N6, J)
    settle(setup, tabs)
    a1 = prom.snapshot({q: q for q in (q_calls, q_errs, q_proc, q_lat, q_dst)})
    a = {q: prom.query(q) for q in (q_out, q_att)}

    def diff(q):
        return {dict(k).get("outcome", "") + "/" + dict(k)["family"]: v - b[q].get(k, 0) for k, v in a[q].items()
                if v - b[q].get(k, 0)}

    assert a1[q_calls] - b1[q_calls] == N
    assert a1[q_errs] - b1[q_errs] == 0
    # The per-process series counts every call of the child, N getppid among them.
    assert a1[q_proc] - b1[q_proc] >= N
    assert diff(q_out) == {"established/ipv4": N4, "established/ipv6": N6, "refused/ipv4": J}
    assert diff(q_att) == {"/ipv4": N4 + J, "/ipv6": N6}
    # Every outcome here carries its latency; the closed port is one destination.
    assert a1[q_lat] - b1[q_lat] == N4 + N6 + J
    assert a1[q_dst] - b1[q_dst] == J
    # And they stay there while the child is idle, a few intervals on.
    time.sleep(1.0)
    settle(setup, tabs)
    assert prom.snapshot({q: q for q in (q_calls, q_errs, q_lat, q_dst)}) == {
        q: a1[q] for q in (q_calls, q_errs, q_lat, q_dst)}
    assert {q: prom.query(q) for q in (q_out, q_att)} == a


def test_disk_reads_match_diskstats_and_histogram_count(setup):
    prom = setup["prom"]
    with DiskWorkload(READS, 0) as w:
        disk = w.disk
        sampler = DiskstatsSampler(disk)
        try:
            settle(setup, ["disk"])
            sel = f'{{disk="{disk}",op="read"}}'
            q = {"ios": f"bpftop_disk_ios_total{sel}", "count": f"bpftop_disk_latency_seconds_count{sel}",
                 "bytes": f"bpftop_disk_bytes_total{sel}", "lost": "bpftop_disk_lost_completions_total",
                 "t": 'bpftop_collector_last_collection_timestamp_seconds{tab="disk"}'}
            b = prom.snapshot(q)
            w.run()
            settle(setup, ["disk"])
            a = prom.snapshot(q)
            time.sleep(0.05)  # a diskstats reading begun after the last collection
        finally:
            sampler.stop.set()
            sampler.thread.join()
        w.close()
    ours, lost = a["ios"] - b["ios"], a["lost"] - b["lost"]
    # The Disk tab's rule (tests/test_disk_bpf.py): within 5% of diskstats,
    # or short by no more than what was lost; here diskstats is bracketed
    # by the exporter's two collection times (read every 10 ms).
    inner = sampler.before(a["t"])["reads"] - sampler.after(b["t"])["reads"]
    outer = sampler.after(a["t"])["reads"] - sampler.before(b["t"])["reads"]
    assert ours + lost >= 0.99 * READS, (ours, lost)
    assert inner * 0.95 - 1 <= ours + lost and ours <= outer * 1.05 + 1, (ours, lost, inner, outer)
    assert a["bytes"] - b["bytes"] >= 0.95 * READS * 4096
    # Every completion had its start seen: the histogram counts each I/O once.
    assert a["count"] - b["count"] == ours


def test_a_probe_switched_off_reads_0_and_the_rest_keep_serving(setup):
    prom, exporter = setup["prom"], setup["exporter"]
    held = held_prog_ids(exporter.pid)
    cache_programs = len(prom.query('bpftop_program_runs_total{tab="cache"}'))
    assert cache_programs > 0 and len(held) > cache_programs
    others = [t for t in TABS if t != "cache"]
    setup["cfg"].write_text(f"probes = {json.dumps(others)}\n[exporter]\nper_process = true\ntop_n = 5\n")
    exporter.send_signal(signal.SIGHUP)
    prom.wait("the cache collector detached",
              lambda: prom.one('bpftop_collector_attached{tab="cache"}', default=None) == 0, scaled(20))
    info = {dict(k)["tab"]: dict(k)["state"] for k in prom.query("bpftop_collector_info")}
    assert info["cache"] == "disabled" and info["syscalls"] == "running"
    # Its programs are out of the kernel's hands: the exporter holds the others only.
    deadline = time.monotonic() + scaled(10)
    while len(held_prog_ids(exporter.pid)) != len(held) - cache_programs and time.monotonic() < deadline:
        time.sleep(0.2)
    assert held_prog_ids(exporter.pid) < held and len(held_prog_ids(exporter.pid)) == len(held) - cache_programs
    settle(setup, others)
    attached = {dict(k)["tab"]: v for k, v in prom.query("bpftop_collector_attached").items()}
    assert attached == {**dict.fromkeys(others, 1), "cache": 0}
    assert prom.one('up{job="bpftop"}') == 1
    # Its counters stay (no reset), and switched on again it attaches anew.
    assert prom.query("bpftop_cache_hits_total")
    setup["cfg"].write_text("[exporter]\nper_process = true\ntop_n = 5\n")
    exporter.send_signal(signal.SIGHUP)
    prom.wait("the cache collector attached again",
              lambda: prom.one('bpftop_collector_attached{tab="cache"}') == 1, scaled(60))


def test_sigterm_exits_0_and_leaves_no_program(setup):
    exporter = setup["exporter"]
    exporter.send_signal(signal.SIGTERM)
    assert exporter.wait(scaled(30)) == 0
    setup["err"].seek(0)
    err = setup["err"].read()
    assert "Traceback" not in err, err
    assert wait_until_gone(setup["before"]) == []
