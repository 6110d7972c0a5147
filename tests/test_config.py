"""The config files: precedence (command line, user, system), every key
checked with a one-line message and exit 2, ``bpftop config`` naming where
each value came from, and a user file's interval reaching ``--once``."""

import json
import os
import subprocess
import sys

import pytest

from bpftop import config


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def files(tmp_path):
    user = tmp_path / "xdg" / "bpftop" / "config.toml"
    system = tmp_path / "etc" / "config.toml"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"), BPFTOP_SYSTEM_CONFIG=str(system))
    return user, system, env


def bpftop(args, env, timeout=60):
    return subprocess.run([sys.executable, "-m", "bpftop", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_missing_files_give_the_defaults(tmp_path):
    cfg = config.load([tmp_path / "no" / "system.toml", tmp_path / "no" / "user.toml"])
    assert cfg.get("interval") == 1.0 and cfg.get("exporter.listen") == "127.0.0.1:9435"
    assert set(cfg.sources.values()) == {config.DEFAULT}


def test_user_over_system_over_default(files):
    user, system, _env = files
    write(system, 'interval = 5\nlatency = false\n[exporter]\nlisten = "0.0.0.0:9100"\n')
    write(user, 'interval = 2.5\n[exporter]\ntop_n = 3\n')
    cfg = config.load([system, user])
    assert cfg.get("interval") == 2.5 and cfg.sources["interval"] == str(user)
    assert cfg.get("latency") is False and cfg.sources["latency"] == str(system)
    assert cfg.get("exporter.listen") == "0.0.0.0:9100" and cfg.sources["exporter.listen"] == str(system)
    assert cfg.get("exporter.top_n") == 3 and cfg.sources["exporter.top_n"] == str(user)
    assert cfg.sources["probes"] == config.DEFAULT


@pytest.mark.parametrize("text, key, expected", [
    ("intervall = 2\n", "'intervall'", "unknown key"),
    ("interval = \"fast\"\n", "'interval'", "a number of seconds from 0.1 to 3600"),
    ("interval = 0\n", "'interval'", "a number of seconds from 0.1 to 3600"),
    ("tabs = [\"syscalls\", \"nope\"]\n", "'tabs'", "a list of tab ids"),
    ("latency = 1\n", "'latency'", "true or false"),
    ("[exporter]\nlisten = \"localhost\"\n", "'exporter.listen'", "ADDR:PORT"),
    ("[exporter]\ntop_n = 0\n", "'exporter.top_n'", "a whole number from 1 to 1000"),
    ("[exporter]\nport = 1\n", "'exporter.port'", "unknown key"),
    ("[colours]\nx = 1\n", "[colours]", "unknown table"),
])
def test_a_bad_key_exits_2_with_one_line(files, text, key, expected):
    user, _system, env = files
    write(user, text)
    for args in (["--once"], ["config"], ["exporter"]):
        res = bpftop(args, env)
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and res.stdout == "", res.stderr
        assert lines[0].startswith(f"bpftop: {user}: ") and key in lines[0] and expected in lines[0], lines[0]


def test_not_toml_exits_2(files):
    user, _system, env = files
    write(user, "interval = = 2\n")
    res = bpftop(["--once"], env)
    assert res.returncode == 2 and res.stderr.startswith(f"bpftop: {user}: not valid TOML") and \
        len(res.stderr.splitlines()) == 1


def test_bpftop_config_says_where_each_value_came_from(files):
    user, system, env = files
    write(system, "[exporter]\nper_process = true\n")
    write(user, "interval = 2.5\n")
    res = bpftop(["config"], env)
    assert res.returncode == 0, res.stderr
    lines = {line.split("=")[0].strip(): line for line in res.stdout.splitlines() if not line.startswith("#")}
    assert lines["interval"].startswith("interval") and "= 2.5  # " + str(user) in lines["interval"]
    assert "= true  # " + str(system) in lines["exporter.per_process"]
    assert "# default" in lines["exporter.listen"] and '"127.0.0.1:9435"' in lines["exporter.listen"]
    assert len(lines) == len(config.KEYS)


def test_exporter_arguments_are_checked_before_anything_loads(files):
    _user, _system, env = files
    for args, words in ((["exporter", "--listen", "localhost"], "not ADDR:PORT"),
                        (["exporter", "--tls-cert", "/x.pem"], "--tls-cert and --tls-key go together"),
                        (["exporter", "--top", "0"], "not a number from 1 to 1000")):
        res = bpftop(args, env)
        assert res.returncode == 2 and words in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr


@pytest.mark.bpf
def test_a_user_files_interval_reaches_once_json_and_the_command_line_wins(files):
    user, _system, env = files
    write(user, "interval = 2.5\n")
    res = bpftop(["--once", "--json", "--tab", "syscalls"], env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["interval_s"] >= 2.4
    res = bpftop(["--once", "--json", "--tab", "syscalls", "-d", "0.3"], env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["interval_s"] < 2.4
