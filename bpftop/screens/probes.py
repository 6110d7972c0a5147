"""The probes screen: every collector and its hooks, attached or not and
why, with events per second and kernel cost from BPF run-time statistics.
Space or Enter switches the selected probe off (its programs are detached)
or on again."""

from __future__ import annotations

from typing import Callable, List, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Static

from ..probes import ProbeRow
from ..safetext import safe
from ..tables import fmt_pct, fmt_rate
from ..widgets.key_bar import KeyBar
from ..widgets.plain import plain, show_text

# The cost columns come first: at 80 columns they must show, and the
# program names and hook descriptions (up to 50 and 200 characters) would
# push them past the edge; those two come last, and whole in the selected
# row's detail line. SKIPPED: runs the kernel did not make since attach
# (its recursion guard: another BPF program was running on that CPU),
# events lost to the tab.
COLUMNS = ("PROBE", "STATE", "EVENTS/s", "AVG ns", "CPU %", "SKIPPED", "KIND", "PROGRAM", "HOOK")
_NUMERIC = {"EVENTS/s", "AVG ns", "CPU %", "SKIPPED"}


def _cells(row: ProbeRow) -> List[Text]:
    values = [
        row.label, row.state,
        fmt_rate(row.events_per_s), "-" if row.avg_ns is None else f"{row.avg_ns:.0f}",
        "-" if row.cpu_pct is None else fmt_pct(row.cpu_pct) if row.cpu_pct >= 0.1 else f"{row.cpu_pct:.3f}",
        "-" if row.misses is None else str(row.misses),
        row.kind, row.program, row.hook,
    ]
    style = {"attached": "", "off": "dim", "detached": "dim", "on at start": "dim", "off at start": "dim",
             "standby": "dim", "unavailable": "red", "starting": "yellow"}.get(row.state, "")
    return [Text(safe(v), style=style, justify="right" if col in _NUMERIC else "left")
            for col, v in zip(COLUMNS, values)]


def detail_line(row: Optional[ProbeRow]) -> str:
    """The selected row's program and hook in full, then why it is in its
    state (a failed load's reason)."""
    if row is None:
        return ""
    text = f"{row.label}: {row.program} on {row.hook} ({row.kind})"
    return text + (f"\n{row.reason}" if row.reason else "")


class ProbesScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,P", "close", "close"),
        Binding("space,t", "toggle_probe", "switch on/off"),
    ]

    def __init__(self, sample: Callable[[], List[ProbeRow]], note: Callable[[], str],
                 toggle: Callable[[str, str], None]) -> None:
        """``sample`` lists the rows, ``note`` says where the kernel cost
        figures come from, ``toggle`` switches a tab's probe (or one of its
        optional probes, by name) off or on."""
        super().__init__()
        self.rows: List[ProbeRow] = []
        self._sample, self._note, self._toggle = sample, note, toggle

    def compose(self) -> ComposeResult:
        yield Static("[b]Probes[/b]  Space/Enter/t switches the selected probe off (detached) or on; Esc closes",
                     id="probes-title")
        yield Static("", id="probes-stats")
        table: DataTable = DataTable(id="probes-table", cursor_type="row")
        for col in COLUMNS:
            table.add_column(col, key=col)
        yield table
        yield Static("", id="probes-reason")
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(1.0, self.refresh_rows)
        self.query_one(DataTable).focus()

    def refresh_rows(self) -> None:
        selected = self.selected()
        self.rows = self._sample()
        show_text(self.query_one("#probes-stats", Static), plain(self._note()))
        table = self.query_one(DataTable)
        table.clear()
        for row in self.rows:
            table.add_row(*_cells(row), key=row.key)
        if selected is not None:
            keys = [r.key for r in self.rows]
            if selected.key in keys:
                table.move_cursor(row=keys.index(selected.key), animate=False, scroll=False)
        self._show_reason()

    def selected(self) -> Optional[ProbeRow]:
        table = self.query_one(DataTable)
        if not 0 <= table.cursor_row < table.row_count:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return next((r for r in self.rows if r.key == key), None)

    def _show_reason(self) -> None:
        show_text(self.query_one("#probes-reason", Static), plain(detail_line(self.selected())))

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_reason()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_toggle_probe()

    def action_toggle_probe(self) -> None:
        row = self.selected()
        if row is not None:
            self._toggle(row.tab, row.part)
            self.refresh_rows()

    def action_close(self) -> None:
        self.dismiss()
