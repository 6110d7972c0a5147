"""The one table `sudo make bench` ends with (issue 15).

Each bench prints its own full report and, through `add()`, hands its
headline figures to this table: the figure, bpftop's value, the bcc
counterpart measured side by side in the same run, their ratio, the target
and whether it was met. `bench/table` runs the benches with
``BPFTOP_BENCH_ROWS`` pointing at a file it owns and prints the rows
together at the end. Run alone, a bench leaves that variable unset and
`add()` does nothing.
"""

import json
import os
from dataclasses import asdict, dataclass
from typing import List, Optional

ENV = "BPFTOP_BENCH_ROWS"


@dataclass(frozen=True)
class Row:
    bench: str
    figure: str
    bpftop: Optional[float]
    counterpart: str          # the bcc tool (or baseline) it is compared with
    theirs: Optional[float]
    target: str               # as the issue states it, e.g. "<= 0.65x"
    ok: Optional[bool]        # None: no target, or not measurable in this run
    ratio: Optional[float] = None  # given when it is not simply bpftop / theirs
    note: str = ""

    def ratio_text(self) -> str:
        r = self.ratio
        if r is None and self.bpftop is not None and self.theirs:
            r = self.bpftop / self.theirs
        return "-" if r is None else f"{r:.2f}"


def add(row: Row) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(asdict(row)) + "\n")


def read(path: str) -> List[Row]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(Row(**json.loads(line)))
    return rows


def _num(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.2f}"


def render(rows: List[Row]) -> str:
    out = ["| bench | figure | bpftop | bcc counterpart | theirs | ratio | target | |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        verdict = "" if r.ok is None else ("PASS" if r.ok else "MISS")
        if r.note:
            verdict = f"{verdict} ({r.note})".strip()
        out.append(f"| {r.bench} | {r.figure} | {_num(r.bpftop)} | {r.counterpart} | {_num(r.theirs)} "
                   f"| {r.ratio_text()} | {r.target} | {verdict} |")
    return "\n".join(out)
