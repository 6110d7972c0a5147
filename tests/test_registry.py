"""The tab registry is the one place that lists the tabs: keys, --tab,
tab options, help and doctor derive from it, and no module outside a tab's
own ones names a tab."""

import re
from pathlib import Path

import pytest

from bpftop import cli, modes
from bpftop.keys import KEYS
from bpftop.tabs import TABS, CollectorOptions, first

PACKAGE = Path(__file__).resolve().parent.parent / "bpftop"
# The filter language's own words: "disk" is also the name of a filter field.
FIELD_VOCABULARY = {"collectors/capabilities.py"}
# "bpf" is also a system call's name (the syscall table) and a library's
# (libbpf, found by name): those modules use the word, not the tab.
OTHER_MEANINGS = {"bpf": {"collectors/syscall_table_x86_64.py", "bpf/btf.py"}}


def _own_module(tab: str, path: Path) -> bool:
    rel = path.relative_to(PACKAGE).as_posix()
    return rel.split("/")[-1].startswith(tab) and rel.split("/")[0] in ("collectors", "model", "render", "views", "bpf")


@pytest.mark.parametrize("tab", list(TABS))
def test_only_the_registry_and_the_tabs_own_modules_name_a_tab(tab):
    quoted = re.compile(rf"""["']{re.escape(tab)}["']""")
    strays = []
    for path in PACKAGE.rglob("*.py"):
        if (path.name == "tabs.py" and path.parent == PACKAGE) or _own_module(tab, path):
            continue
        if path.relative_to(PACKAGE).as_posix() in FIELD_VOCABULARY | OTHER_MEANINGS.get(tab, set()):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if quoted.search(line):
                strays.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not strays, "a tab id outside the registry and the tab's own modules:\n" + "\n".join(strays)


def test_each_entry_agrees_with_its_collector_and_model():
    for tab, spec in TABS.items():
        assert spec.id == tab
        assert spec.collector.tab == tab, f"{spec.collector.__name__}.tab is not {tab!r}"
        collector = spec.make_collector(CollectorOptions())
        assert isinstance(collector, spec.collector)
        assert spec.model.__dataclass_fields__["tab"].default == tab
        assert spec.help.strip()


def test_tab_keys_follow_the_registry_order():
    tab_keys = [k for k in KEYS if k.action.startswith("show_tab(")]
    assert [k.keys for k in tab_keys] == [str(i) for i in range(1, len(TABS) + 1)]
    for key, spec in zip(tab_keys, TABS.values()):
        assert spec.title in key.description


def test_tab_choices_and_options_come_from_the_registry(capsys):
    parser = cli.parser()
    for tab in TABS:
        assert parser.parse_args(["--tab", tab]).tab == [tab]
    with pytest.raises(SystemExit):
        parser.parse_args(["--tab", "nosuch"])
    assert "no tab 'nosuch'" in capsys.readouterr().err
    for spec in TABS.values():
        for option in spec.options:
            assert option.dest in vars(parser.parse_args([]))
    assert first().id == next(iter(TABS))


def test_a_tab_option_reaches_its_collector():
    settings = modes.tab_settings(cli.parser().parse_args(["--latency", "--disk-queued", "--cache-comm", "^py"]))
    options = CollectorOptions(pids=(1,), settings=settings)
    assert TABS["syscalls"].make_collector(options).latency is True
    assert TABS["disk"].make_collector(options).queued is True
    defaults = CollectorOptions(settings=modes.tab_settings(cli.parser().parse_args([])))
    # Latency is off by default; --no-latency (the old switch) still says so,
    # and of the pair the last one given wins.
    assert TABS["syscalls"].make_collector(defaults).latency is False
    for argv, on in ((["--no-latency"], False), (["--latency", "--no-latency"], False),
                     (["--no-latency", "--latency"], True)):
        given = CollectorOptions(settings=modes.tab_settings(cli.parser().parse_args(argv)))
        assert TABS["syscalls"].make_collector(given).latency is on
    assert TABS["disk"].make_collector(defaults).queued is False
