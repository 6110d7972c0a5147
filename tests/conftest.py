import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
from bpfprogs import bpf_skip_reason
from testenv import scaled

# A shell starts a background job with SIGINT ignored, and a child inherits
# that; bpftop rightly keeps it ignored, so the SIGINT exit tests would hang
# when the suite itself runs in the background. A handler (unlike SIG_IGN)
# is reset to the default on exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# No test reads the operator's config files (~/.config/bpftop, /etc/bpftop):
# every bpftop the tests start sees none unless the test writes one.
_CONFIG_HOME = tempfile.mkdtemp(prefix="bpftop-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG_HOME
os.environ["BPFTOP_SYSTEM_CONFIG"] = os.path.join(_CONFIG_HOME, "system.toml")
atexit.register(shutil.rmtree, _CONFIG_HOME, True)

# Compiled BPF objects go to a cache of the session's own (0700, made by
# mkdtemp), not the machine's: each run's first load of a configuration
# compiles and stores, the later ones load from the cache, so both paths
# run under the ground-truth tests. A test that needs its own cache sets
# BPFTOP_OBJECT_CACHE itself.
if "BPFTOP_OBJECT_CACHE" not in os.environ:
    try:
        _OBJECT_CACHE = tempfile.mkdtemp(prefix="bpftop-test-objects-")
    except OSError:
        os.environ["BPFTOP_OBJECT_CACHE"] = "off"
    else:
        os.environ["BPFTOP_OBJECT_CACHE"] = _OBJECT_CACHE
        atexit.register(shutil.rmtree, _OBJECT_CACHE, True)


@pytest.fixture(scope="session")
def shared_collectors():
    """Started collectors reused across the session's tests (tests/shared.py).
    The page-cache tests need a file that entered the cache before their
    collector started: one is written and pinned before the session's
    first cache collector starts, and kept until the end."""
    from shared import SharedCollectors

    shared = SharedCollectors()
    pinned = []

    def pin_a_file():
        from cachefiles import MB, Pin, make_file

        shared.cache_file = make_file(32 * MB)
        pinned.append(Pin(shared.cache_file))

    shared.before_first["CacheCollector"] = pin_a_file
    try:
        yield shared
        shared.close()
    finally:
        for pin in pinned:
            pin.close()
            pin.__exit__(None, None, None)
        if shared.cache_file:
            os.unlink(shared.cache_file)


def pytest_collection_modifyitems(config, items):
    reason = bpf_skip_reason()
    if reason is None:
        return
    if os.environ.get("BPFTOP_REQUIRE_BPF") == "1" and os.geteuid() == 0:
        # Root and told BPF must work: a missing piece is a failure, not a skip.
        return
    for item in items:
        if "bpf" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def need_tmux():
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed (make test installs it)")


@pytest.fixture(scope="session")
def doctor_run():
    """One ``bpftop doctor`` for every test that reads its report: it
    compiles every rung of every collector."""
    return subprocess.run([sys.executable, "-m", "bpftop", "doctor"], capture_output=True, text=True,
                          timeout=scaled(300))


@pytest.fixture(autouse=True)
def _console_composed(monkeypatch):
    """Pilot tests of the console start once every tab is composed (see
    uihelpers.views_composed), whatever the machine's load."""
    import contextlib

    from uihelpers import views_composed, wait_for

    from bpftop.app import BpftopApp

    original = BpftopApp.run_test

    @contextlib.asynccontextmanager
    async def run_test(self, *args, **kwargs):
        async with original(self, *args, **kwargs) as pilot:
            await wait_for(pilot, lambda: views_composed(self), timeout=scaled(20))
            yield pilot

    monkeypatch.setattr(BpftopApp, "run_test", run_test)


@pytest.fixture(autouse=True)
def _gc_unfrozen():
    """A console that settles freezes Python's GC over everything alive
    (BpftopApp._settle); in this one test process that would be every
    earlier test's garbage too: each test starts and ends unfrozen."""
    import gc

    gc.unfreeze()
    yield
    gc.unfreeze()
