"""The compiled-object cache's store: its key, and what it refuses to read."""

import json
import os
import stat

import pytest

from bpftop.bpf import objcache

ROOT = os.geteuid() == 0
BODY = {"license": "GPL", "maps": [], "functions": [{"name": "f", "code": objcache.b64(b"\x95" + b"\0" * 7)}]}


@pytest.fixture
def place(tmp_path):
    return objcache.open_directory(str(tmp_path / "objects"))


def test_the_directory_is_made_private_and_an_entry_reads_back(place):
    assert stat.S_IMODE(os.stat(place).st_mode) == 0o700
    objcache.write(place, "k1", BODY)
    (name,) = os.listdir(place)
    assert stat.S_IMODE(os.stat(os.path.join(place, name)).st_mode) == 0o600
    got = objcache.read(place, "k1")
    assert got["functions"] == BODY["functions"] and got["key"] == "k1"
    assert objcache.read(place, "k2") is None


def test_the_key_changes_with_every_flag_and_the_program():
    a = objcache.key("syscalls", ["-DA=1", "-I/x"])
    assert a == objcache.key("syscalls", ["-DA=1", "-I/x"])
    assert a != objcache.key("syscalls", ["-DA=2", "-I/x"])
    assert a != objcache.key("syscalls", ["-DA=1"])
    assert a != objcache.key("tcp", ["-DA=1", "-I/x"])


@pytest.mark.parametrize("damage", ["flip", "truncate", "not json", "renamed"])
def test_a_damaged_entry_is_not_used_and_is_removed(place, damage):
    objcache.write(place, "k1", BODY)
    path = os.path.join(place, "k1.json")
    raw = open(path, "rb").read()
    if damage == "flip":
        outer = json.loads(raw)
        outer["body"] = outer["body"].replace("GPL", "GPX")
        raw = json.dumps(outer).encode()
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "not json":
        raw = b"\x00\x1b[2J" * 10
    open(path, "wb").write(raw)
    key = "k1"
    if damage == "renamed":
        os.rename(path, os.path.join(place, "k2.json"))
        path, key = os.path.join(place, "k2.json"), "k2"
    assert objcache.read(place, key) is None
    assert not os.path.exists(path)


def test_a_linked_entry_is_not_followed(place, tmp_path):
    objcache.write(place, "k1", BODY)
    os.rename(os.path.join(place, "k1.json"), tmp_path / "elsewhere.json")
    os.symlink(tmp_path / "elsewhere.json", os.path.join(place, "k1.json"))
    assert objcache.read(place, "k1") is None


def test_an_entry_others_can_write_is_refused(place):
    objcache.write(place, "k1", BODY)
    os.chmod(os.path.join(place, "k1.json"), 0o666)
    with pytest.raises(objcache.UnsafeCache, match="written by others"):
        objcache.read(place, "k1")


@pytest.mark.skipif(not ROOT, reason="needs root to give a file to another user")
def test_an_entry_of_another_user_is_refused(place):
    objcache.write(place, "k1", BODY)
    os.chown(os.path.join(place, "k1.json"), 65534, 65534)
    with pytest.raises(objcache.UnsafeCache, match="owned by uid 65534"):
        objcache.read(place, "k1")


def test_a_directory_others_can_write_is_refused(tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    with pytest.raises(objcache.UnsafeCache, match="written by others"):
        objcache.open_directory(str(d))
    # ... and so is one below a directory others can write (not sticky).
    with pytest.raises(objcache.UnsafeCache, match="written by others"):
        objcache.open_directory(str(d / "objects"))


@pytest.mark.skipif(not ROOT, reason="needs root to give a directory to another user")
def test_a_directory_of_another_user_is_refused(tmp_path):
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    with pytest.raises(objcache.UnsafeCache, match="owned by uid 65534"):
        objcache.open_directory(str(d))


def test_the_oldest_entries_go_past_the_limit(place, monkeypatch):
    monkeypatch.setattr(objcache, "MAX_ENTRIES", 3)
    for i in range(5):
        objcache.write(place, f"k{i}", BODY)
        os.utime(os.path.join(place, f"k{i}.json"), ns=(i * 10**9, i * 10**9))
    assert sorted(os.listdir(place)) == ["k2.json", "k3.json", "k4.json"]


def test_off_switches_it_off(monkeypatch):
    monkeypatch.setenv(objcache.ENV, "off")
    monkeypatch.setattr(objcache, "status", objcache.CacheStatus())
    assert objcache.directory() is None
    assert "BPFTOP_OBJECT_CACHE=off" in objcache.status.disabled


def test_a_cached_programs_kernel_name_is_cut_as_bcc_cuts_it():
    from bpftop.bpf.progload import kernel_name

    assert kernel_name(b"tracepoint__sock__inet_sock_set_state") == b"sock__inet_sock"
    assert kernel_name(b"raw_tracepoint__sched_process_fork") == b"sched_process_f"
    assert kernel_name(b"bpftop_sc_exit") == b"bpftop_sc_exit"
