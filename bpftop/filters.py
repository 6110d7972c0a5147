"""The live filter language of DESIGN.md: space-separated terms that must
all hold, ``pid=123 comm~nginx port=443 disk=vda syscall=read``, with ``!=``
for not, ``!~`` for a regex that must not match, and ``>``, ``<``, ``>=``,
``<=`` on numbers (any numeric column: ``count>100``).

Parsing never raises anything but FilterError. Terms the kernel can apply
(pid, port, disk equality) are handed to collectors as typed values, never
as text for C source; everything else filters table rows in Python.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .numtext import is_decimal
from .tables import Table

Value = Union[int, float, str]

OPS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(!=|!~|>=|<=|=|~|>|<)(.*)$", re.S)
# Fields whose values are integers (pid, port) or names (the rest).
INT_FIELDS = {"pid", "port", "uid", "tid"}
# Column keys a field may go by in the tabs' tables.
ALIASES: Dict[str, Tuple[str, ...]] = {
    "port": ("port", "dport"),
    "addr": ("addr", "daddr"),
}
MAX_TERMS = 32
MAX_VALUES = 1024


class FilterError(ValueError):
    """A filter that does not parse or cannot apply; the message says why."""


@dataclass(frozen=True)
class Term:
    field: str
    op: str
    values: Tuple[Value, ...]
    text: str
    # dataclasses.field: the name field is taken by the term's own field.
    regex: Optional[re.Pattern[str]] = dataclasses.field(default=None, compare=False)

    def keys(self) -> Tuple[str, ...]:
        return ALIASES.get(self.field, (self.field,))

    def holds(self, value: Any) -> bool:
        if isinstance(value, tuple):
            # A cell with several values (a BPF program's owners or attach
            # points) holds a positive term when any value does, and a
            # negative one when every value does.
            if self.op in ("!=", "!~"):
                return all(self.holds(v) for v in value)
            return any(self.holds(v) for v in value)
        if self.op in ("~", "!~"):
            found = value is not None and self.regex is not None and self.regex.search(str(value)) is not None
            return found if self.op == "~" else not found
        if self.op in ("=", "!="):
            equal = any(_equal(value, v) for v in self.values)
            return equal if self.op == "=" else not equal
        number = _number(value)
        if number is None:
            return False
        limit = float(self.values[0])
        return {">": number > limit, "<": number < limit, ">=": number >= limit, "<=": number <= limit}[self.op]


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _equal(value: Any, wanted: Value) -> bool:
    if value is None:
        return False
    if isinstance(wanted, (int, float)) and not isinstance(value, str):
        number = _number(value)
        return number is not None and number == wanted
    return str(value) == str(wanted)


def _parse_number(text: str, term: str) -> Union[int, float]:
    try:
        return int(text, 10)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise FilterError(f"{term}: {text!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise FilterError(f"{term}: {text!r} is not a finite number")
    return number


def parse_term(text: str) -> Term:
    m = _TERM.match(text)
    if not m:
        raise FilterError(f"{text!r} is not a term like pid=123, comm~nginx, port!=22 or count>100")
    name, op, raw = m.group(1).lower(), m.group(2), m.group(3)
    if raw == "":
        raise FilterError(f"{text}: a value is missing after {op!r}")
    if op in ("~", "!~"):
        try:
            regex = re.compile(raw)
        except (re.error, RecursionError, OverflowError) as e:
            raise FilterError(f"{text}: not a regular expression ({e})") from None
        return Term(name, op, (raw,), text, regex)
    if op in (">", "<", ">=", "<="):
        return Term(name, op, (_parse_number(raw, text),), text)
    parts = raw.split(",")
    if len(parts) > MAX_VALUES:
        raise FilterError(f"{text}: at most {MAX_VALUES} values in one term")
    values: List[Value] = []
    for part in parts:
        if part == "":
            raise FilterError(f"{text}: an empty value in the list")
        if name in INT_FIELDS:
            if not is_decimal(part) or len(part) > 10:
                raise FilterError(f"{text}: {name} takes whole numbers, not {part!r}")
            values.append(int(part))
        else:
            values.append(part)
    return Term(name, op, tuple(values), text)


@dataclass(frozen=True)
class Filter:
    terms: Tuple[Term, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(t.text if " " not in t.text else shlex.quote(t.text) for t in self.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def fields(self) -> Tuple[str, ...]:
        return tuple(dict.fromkeys(t.field for t in self.terms))

    def combined(self, other: Filter) -> Filter:
        return Filter(self.terms + tuple(t for t in other.terms if t not in self.terms))

    def without(self, fields: Iterable[str]) -> Filter:
        drop = set(fields)
        return Filter(tuple(t for t in self.terms if t.field not in drop))

    def only(self, fields: Iterable[str]) -> Filter:
        keep = set(fields)
        return Filter(tuple(t for t in self.terms if t.field in keep))

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Terms whose field the row lacks do not apply to it."""
        for term in self.terms:
            key = next((k for k in term.keys() if k in row), None)
            if key is not None and not term.holds(row[key]):
                return False
        return True

    def applies_to(self, columns: Iterable[str]) -> bool:
        keys = set(columns)
        return any(k in keys for t in self.terms for k in t.keys())

    def apply(self, table: Table) -> Table:
        keys = [c.key for c in table.columns]
        if not self.applies_to(keys):
            return table
        rows = tuple(r for r in table.rows if self.matches(dict(zip(keys, r))))
        empty = table.empty if rows or not table.rows else f"no row matches the filter {self.text}"
        return Table(table.name, table.title, table.columns, rows, table.key_column, empty, table.sort_column)

    def kernel_set(self, name: str) -> Optional[Tuple[Tuple[Value, ...], bool]]:
        """What a kernel-side set filter on ``name`` should hold, as (values,
        exclude), from its ``=`` and ``!=`` terms; None when there are none.
        Other operators on that field stay in Python."""
        only: Optional[set] = None
        excluded: set = set()
        for term in self.terms:
            if term.field != name:
                continue
            if term.op == "=":
                only = set(term.values) if only is None else only & set(term.values)
                if not only:
                    raise FilterError(f"the {name} terms can never all hold")
            elif term.op == "!=":
                excluded |= set(term.values)
        if only is not None:
            kept = only - excluded
            if not kept:
                raise FilterError(f"the {name} terms can never all hold")
            return tuple(sorted(kept, key=str)), False
        if excluded:
            return tuple(sorted(excluded, key=str)), True
        return None


def parse(text: str) -> Filter:
    """Parse a whole filter; the empty string is the empty filter."""
    if not isinstance(text, str):
        raise FilterError("a filter is text")
    try:
        words = shlex.split(text, posix=True)
    except ValueError as e:
        raise FilterError(f"cannot split the filter into terms: {e}") from None
    if len(words) > MAX_TERMS:
        raise FilterError(f"at most {MAX_TERMS} terms")
    return Filter(tuple(parse_term(w) for w in words))


def check_fields(flt: Filter, known: Sequence[str], where: str) -> None:
    """Refuse terms on fields a tab has nowhere (not in any column, not a
    kernel-side filter), naming the ones it has."""
    names = set(known)
    for term in flt.terms:
        if not any(k in names for k in term.keys()):
            have = ", ".join(sorted(names)) or "none"
            raise FilterError(f"{term.text}: the {where} tab has no field {term.field!r} (fields: {have})")


NO_FILTER = Filter()
