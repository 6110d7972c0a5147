import os
import shutil

import pytest

from bpfprogs import bpf_skip_reason


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
