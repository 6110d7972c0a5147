"""The TCP event log: a top table whose cursor stays on the newest event
while it is at the top, and stays on its event once moved down (so new
events arriving above do not scroll what is being read)."""

from __future__ import annotations

from ..tables import Table
from .top_table import TopTable


class TcpEventLog(TopTable):
    def show(self, table: Table) -> None:
        at_top = self.cursor_row <= 0
        super().show(table)
        if at_top and self.row_count:
            self.move_cursor(row=0, animate=False)
