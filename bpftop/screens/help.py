"""Help: every key, and how to read the numbers."""

from __future__ import annotations

from typing import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import KEYS
from ..tabs import TabSpec

CONSOLE_NOTES = """\
[b]Filter[/b] (/)
Space-separated terms that must all hold: pid=123 comm~nginx port=443
disk=vda op=write syscall=read; != and !~ negate; > < >= <= compare numbers in any
column (count>100). pid=1,2 lists values. pid, port, disk, op equality go to
the kernel (a BPF map, no recompile) on Enter; the rest narrows the tables
as you type. A term that does not parse shows why and changes nothing.
F pins the tab's filter to every tab (terms a tab has no field for are
ignored there and listed in its status line); F again unpins it.

[b]Probes[/b] (P)
Every collector and every rung of its hook ladder: attached, detached,
standby or unavailable (and why). EVENTS/s, AVG ns and CPU % are the
kernel's own BPF run-time statistics for each attached program, switched on
while bpftop runs. Space switches a probe off (a tab's programs are
detached) or on again (compiled and attached anew). An optional part, such
as syscalls latency, is switched by a flag: its program is attached at the
first switch-on and stays attached; "off", it only reads the switch, at the
cost shown (none before it was first switched on).

[b]Snapshots[/b] (s, S)
s saves the screen as plain text, S every tab in one file, each with a
header line (host, kernel, time, interval, filters, hooks). Files are new,
never overwritten, never written through a symlink: --snapshot-dir, default
$XDG_STATE_HOME/bpftop or ~/.local/state/bpftop.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "close"),
    ]

    def __init__(self, tabs: Sequence[TabSpec] = ()) -> None:
        super().__init__()
        self.tabs = list(tabs)

    def compose(self) -> ComposeResult:
        width = max(len(k.label) for k in KEYS) + 2
        keys = "\n".join(f"[b]{k.label.ljust(width)}[/b]{k.description}" for k in KEYS)
        with VerticalScroll(id="help-box"):
            yield Static("[b]bpftop keys[/b]  (Esc, q or ? closes)\n", id="help-title")
            yield Static(keys, id="help-keys")
            yield Static("\n" + CONSOLE_NOTES, classes="help-notes")
            for spec in self.tabs:
                yield Static("\n" + tab_help(spec), classes="help-notes")


def tab_help(spec: TabSpec) -> str:
    """A tab's own keys (its view's BINDINGS) and its notes on the numbers."""
    lines = [f"[b]{spec.title} tab[/b]"]
    for binding in spec.view().BINDINGS:
        if isinstance(binding, Binding):
            lines.append(f"  [b]{binding.key}[/b]  {binding.description}")
    lines.append(spec.help.strip())
    return "\n".join(lines)
