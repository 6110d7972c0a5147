"""Reading a recording: every line checked and bounded (a recording is
any file someone handed over), snapshots decoded back exactly."""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Protocol, Union

from .codec import CodecError, decode_snapshot
from .format import FORMAT, VERSION, RecordingError


@dataclass(frozen=True)
class Frame:
    """One snapshot of one tab at a point of the recording."""

    tab: str
    t: float
    snapshot: Any


@dataclass
class Recording:
    path: str
    sessions: List[Dict[str, Any]] = field(default_factory=list)  # headers, in order
    frames: List[Frame] = field(default_factory=list)
    problem: str = ""  # why reading stopped early, "" when the whole file was read

    @property
    def header(self) -> Dict[str, Any]:
        return self.sessions[0] if self.sessions else {}

    @property
    def tabs(self) -> List[str]:
        seen: Dict[str, None] = {}
        for h in self.sessions:
            for tab in h.get("tabs", []):
                seen[tab] = None
        for f in self.frames:
            seen[f.tab] = None
        return list(seen)


@dataclass(frozen=True)
class Limits:
    """What reading a recording may cost. A recording is any file someone
    handed over: a gzip bomb, a file of newlines or /dev/zero must end in a
    one-line message, not in memory exhaustion. The defaults are far above
    real recordings (the largest line of an hour of all four tabs is some
    hundred KB, nesting is 7 deep) and bound the reader's own memory to a
    small multiple of ``line_bytes``."""

    line_bytes: int = 16 << 20  # decompressed bytes in one line
    total_bytes: int = 2 << 30  # decompressed bytes in the whole file
    depth: int = 64  # JSON nesting


LIMITS = Limits()
_READ = 64 << 10  # compressed bytes read at a time
_PIECE = 512  # compressed bytes decompressed at a time
_OUT = 1 << 20  # decompressed bytes produced at a time
_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(line: bytes, limit: int) -> bool:
    """Nesting deeper than ``limit``, counted on the raw line so that neither
    json nor the codec recurses into it."""
    brackets = _STRINGS.sub(b"", line).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    depth = 0
    for b in brackets:
        depth += 1 if b in (0x5B, 0x7B) else -1
        if depth > limit:
            return True
    return False


class _Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...


class _Lines:
    """The decompressed lines of a gzip file, member after member, read in
    pieces with every size bounded; ``problem`` says why it stopped early."""

    def __init__(self, f: _Readable, limits: Limits) -> None:
        self.f = f
        self.limits = limits
        self.problem = ""

    def __iter__(self) -> Iterator[bytes]:
        pending = bytearray()
        total = 0
        offset = 0  # compressed bytes consumed, for messages
        d = zlib.decompressobj(31)
        in_member = False  # d has taken bytes of a member not yet ended
        data: Union[bytes, memoryview] = b""
        while True:
            if not data:
                data = memoryview(self.f.read(_READ))
                if not data:
                    break
            # Small pieces, so that corruption costs only what follows it.
            piece, rest = data[:_PIECE], data[_PIECE:]
            try:
                out = d.decompress(piece, _OUT)
            except zlib.error as e:
                self.problem = f"corrupt data near byte {offset} ({e})"
                return
            offset += len(piece) - len(d.unconsumed_tail)
            # A tail is left only when a piece inflates past _OUT (a bomb).
            data = memoryview(d.unconsumed_tail + bytes(rest)) if d.unconsumed_tail else rest
            in_member = True
            if d.eof:  # the next gzip member (--record-append) starts here
                data = memoryview(d.unused_data + bytes(data))
                offset -= len(d.unused_data)
                d = zlib.decompressobj(31)
                in_member = False
            total += len(out)
            if total > self.limits.total_bytes:
                self.problem = f"more than {_size(self.limits.total_bytes)} decompressed, over the limit"
                return
            start = 0
            while True:
                nl = out.find(b"\n", start)
                if nl < 0:
                    break
                if len(pending) + nl - start > self.limits.line_bytes:
                    self.problem = self._long()
                    return
                pending += out[start:nl]
                yield bytes(pending)
                pending.clear()
                start = nl + 1
            pending += out[start:]
            if len(pending) > self.limits.line_bytes:
                self.problem = self._long()
                return
        if pending:
            self.problem = "the file ends mid-record (truncated, or still being written)"
        elif in_member:
            self.problem = "the recording was not closed (bpftop was killed, or is still writing it)"

    def _long(self) -> str:
        return f"a line longer than {_size(self.limits.line_bytes)} decompressed, over the limit"


def _size(n: int) -> str:
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{n} bytes"


def read(path: str, max_records: Optional[int] = None, limits: Limits = LIMITS) -> Recording:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise RecordingError(f"cannot read {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        try:
            return _read(path, f, max_records, limits)
        except OSError as e:
            raise RecordingError(f"cannot read {path}: {e.strerror or e}") from None


def _read(path: str, f: _Readable, max_records: Optional[int], limits: Limits) -> Recording:
    magic = f.read(2)
    if magic != b"\x1f\x8b":
        raise RecordingError(f"{path} is not a bpftop recording (not gzip data)")
    source = _Lines(_Prefixed(magic, f), limits)
    rec = Recording(path)
    previous: Dict[str, Any] = {}  # per tab, within a session
    for number, raw in enumerate(source, start=1):
        if _take_line(rec, raw, number, previous, max_records, limits):
            return rec
    if not rec.sessions:
        raise RecordingError(f"{path} is not a bpftop recording (no header)")
    if source.problem:
        rec.problem = f"{source.problem}; {len(rec.frames)} snapshots read"
    return rec


class _Prefixed:
    """The file from its start again, after its first bytes were checked."""

    def __init__(self, head: bytes, f: _Readable) -> None:
        self.head, self.f = head, f

    def read(self, n: int) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            return bytes(head + self.f.read(n - len(head)))
        return bytes(self.f.read(n))


def _not_ours(rec: Recording) -> None:
    if not rec.sessions:
        raise RecordingError(f"{rec.path} is not a bpftop recording (no header)")


def _take_line(rec: Recording, raw: bytes, number: int, previous: Dict[str, Any], max_records: Optional[int],
               limits: Limits) -> bool:
    """One line into ``rec``; True when reading stops here."""
    if _too_deep(raw, limits.depth):
        _not_ours(rec)
        rec.problem = (f"line {number} is nested more than {limits.depth} deep, over the limit; replaying the "
                       f"{len(rec.frames)} snapshots before it")
        return True
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        _not_ours(rec)
        rec.problem = f"line {number} is not valid JSON; replaying the {len(rec.frames)} snapshots before it"
        return True
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        version = obj.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise RecordingError(
                f"{rec.path} was written by a newer bpftop (format version {version}, this one reads up to "
                f"{VERSION}); upgrade bpftop to replay it"
            )
        rec.sessions.append(obj)
        previous.clear()
        return False
    _not_ours(rec)
    if isinstance(obj, dict) and "hooks" in obj and "tab" not in obj:
        hooks = rec.sessions[-1].setdefault("hooks", {})
        if isinstance(hooks, dict) and isinstance(obj["hooks"], dict):
            hooks.update(obj["hooks"])
        return False
    if max_records is not None and len(rec.frames) >= max_records:
        return True
    try:
        tab = str(obj["tab"])
        snapshot = decode_snapshot(obj["snap"], previous.get(tab))
        # Every snapshot type names its own tab: a record filed under
        # another (a damaged byte) would reach that tab's renderer.
        if getattr(snapshot, "tab", None) != tab:
            raise CodecError(f"a {type(snapshot).__name__} filed under tab {tab!r}")
        previous[tab] = snapshot
        rec.frames.append(Frame(tab, float(obj["t"]), snapshot))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError, CodecError) as e:
        rec.problem = f"record on line {number} cannot be read ({e}); replaying the {len(rec.frames)} before it"
        return True
    return False
