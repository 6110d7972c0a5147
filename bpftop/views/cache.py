"""The Cache tab: per-process page-cache table, system summary line and a
hit-ratio time series."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..model import CollectorState, CollectorStatus
from ..model.cache import CacheSnapshot
from ..render.cache import summary, table
from ..widgets.cache_hitplot import HitRatioPlot
from ..widgets.plain import plain
from ..widgets.top_table import TopTable
from .base import TabView


class CacheView(TabView):
    DEFAULT_CSS = """
    CacheView > .tab-summary {
        height: auto;
    }
    CacheView #cache-table {
        height: 1fr;
        border-top: solid $primary-darken-2;
    }
    """

    tab = "cache"
    title = "Cache"
    BINDINGS = [Binding("g", "toggle_plot", "show / hide the hit-ratio graph")]
    HELP = """\
Per process, as bcc's cachetop, with cachestat's formula. From the raw
counters A accesses, B buffer dirties, N pages added, D pages dirtied:
  total = max(0, A - B); MISSES = max(0, N - D); HITS = total - MISSES,
  and when that is negative MISSES = total and HITS = 0 (readahead can add
  more pages than are read); DIRTIES = D.
  READ_HIT% = 100 * HITS / total; WRITE_HIT% = 100 * max(0, D - N) / D
  (dirtied pages that were already cached). Both stay within 0..100;
  '-' means nothing to divide by.
cachetop's own READ_HIT% and WRITE_HIT% divide by A + B + N + D and show
about 50% for a cold read; bpftop does not copy that.
Hooks. kprobe and fentry rungs count calls, as cachetop: A =
folio_mark_accessed / mark_page_accessed, B = mark_buffer_dirty, N =
filemap_add_folio / add_to_page_cache_lru, D = folio_account_dirtied (or
its tracepoint writeback_dirty_folio when it is inlined); on folio kernels
a call covers a whole folio. The tracepoint rung (kernels without kprobes)
counts pages: A = pages each read() asks for (mm_filemap_get_pages, counted
once per read even when the kernel reports it in several batches, so a read
past the end of a file counts the pages it asked for), plus pages of files
the process maps into its memory (the growth of its mapped file pages,
kmem:rss_stat: a fault on a large folio maps all of it, fault-around maps
what is cached around the fault); N = pages added
(mm_filemap_add_to_page_cache, 2^order per folio); D = pages dirtied
(writeback_dirty_folio, sized from the folio itself); B = 0, so writes add
no accesses. Misses are counted in the context that adds the pages, the
reader itself for readahead.
So HITS (tracepoint rung) are pages read with read() that were cached, plus
every cached file page a process maps: at start its binary and libraries
(a Python 3.11 that only starts and sleeps: about 1,700 pages, the
pages it touches and the cached pages fault-around maps next to them),
later any mmap()ed file. mlock, MAP_POPULATE and madvise(WILLNEED) on a
mapping count all the pages they map. A process's first change of mapped
pages after bpftop starts only sets its baseline.
The summary line is the same formula over everything the kernel counted
(after the pid filter; the comm filter narrows rows only), with Buffers
and Cached from /proc/meminfo. The process filter (-p) is applied in the
kernel.
"""

    def compose(self) -> ComposeResult:
        yield self.status_widget()
        yield Static("", classes="tab-summary")
        yield HitRatioPlot(id="cache-plot")
        yield TopTable(id="cache-table")

    def describe_status(self, status: CollectorStatus) -> Text:
        if status.state is CollectorState.RUNNING and status.chosen is not None:
            # The rung's counting note is for doctor; here its short name,
            # kind and unit are enough (the help says the rest).
            chosen = status.chosen
            counts = f"; counts {chosen.unit.value}" if chosen.unit is not None else ""
            return plain(f"running on {chosen.label or chosen.strategy} ({chosen.kind.value}{counts})")
        return super().describe_status(status)

    def render_snapshot(self, snapshot: CacheSnapshot) -> None:
        self.query_one(".tab-summary", Static).update(plain(summary(snapshot)))
        self.query_one("#cache-plot", HitRatioPlot).add(snapshot.taken_at, snapshot.system.read_hit_pct)
        self.query_one("#cache-table", TopTable).show(table(snapshot))

    def action_toggle_plot(self) -> None:
        plot = self.query_one("#cache-plot", HitRatioPlot)
        plot.display = not plot.display
