"""Text from the traced machine or from a file, made safe to show on a
terminal.

Any user can name a process anything (``prctl(PR_SET_NAME)``, argv), and a
recording can come from anywhere: an escape sequence in a name would reach
the operator's terminal, where OSC 52 writes the clipboard and CSI moves,
clears and recolours. Every renderer of such text (the console, ``-b`` and
``--once`` text, snapshots, doctor, help) passes it through ``safe`` first;
JSON keeps the original value (json.dumps escapes control characters).

What becomes a visible escape: C0 controls (newline and tab too: one value
stays one cell), DEL, C1 controls (U+0080..U+009F, which a terminal may take
as CSI/OSC), lone surrogates (undecodable bytes), bidi controls and
zero-width characters (which can make one name look like another), and the
line and paragraph separators.
"""

from __future__ import annotations

from typing import Any, Dict

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}

# Bidirectional formatting (embeddings, overrides, isolates, marks) and
# zero-width characters that render as nothing.
_INVISIBLE = [
    0x061C, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028, 0x2029, 0x2060, 0x2061, 0x2062,
    0x2063, 0x2064, 0xFEFF,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]


def _escape(cp: int) -> str:
    if cp in _NAMED:
        return _NAMED[cp]
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    return f"\\u{cp:04x}"


def _table() -> Dict[int, str]:
    table = {cp: _escape(cp) for cp in range(0x00, 0x20)}
    table.update({cp: _escape(cp) for cp in range(0x7F, 0xA0)})
    table.update({cp: _escape(cp) for cp in range(0xD800, 0xE000)})
    table.update({cp: _escape(cp) for cp in _INVISIBLE})
    return table


_TABLE = _table()
UNSAFE = frozenset(_TABLE)


def safe(value: Any) -> str:
    """``value`` as text that cannot drive a terminal: every unsafe
    character becomes a visible escape such as ``\\x1b`` or ``\\n``."""
    text = value if isinstance(value, str) else str(value)
    return text.translate(_TABLE)


def is_safe(text: str) -> bool:
    return not any(ord(ch) in UNSAFE for ch in text)


def safe_lines(text: str) -> str:
    """Multi-line output (a whole text render) made safe line by line: the
    newlines stay, everything else unsafe is escaped. A last line of defence
    behind per-field ``safe`` for text that is written to a terminal."""
    return "\n".join(safe(line) for line in text.split("\n"))
