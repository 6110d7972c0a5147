"""Text from the traced machine or a recording cannot drive a terminal."""

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bpftop.safetext import UNSAFE, safe, safe_lines
from bpftop.tables import Column, Table, render_table

# What a terminal acts on: ESC (and so CSI/OSC/DCS), BEL, the other C0
# controls, DEL, and the C1 controls (0x9b is CSI, 0x9d OSC) as UTF-8.
DANGEROUS_BYTES = re.compile(rb"[\x00-\x1f\x7f]|\xc2[\x80-\x9f]")


def decodings(raw: bytes):
    yield raw.decode("utf-8", "surrogateescape")
    yield raw.decode("utf-8", "replace")
    yield raw.decode("latin-1")


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_no_control_survives_any_bytes(raw):
    for text in decodings(raw):
        out = safe(text)
        assert not DANGEROUS_BYTES.search(out.encode("utf-8"))
        assert not any(ord(ch) in UNSAFE for ch in out)


@settings(max_examples=300)
@given(st.text(max_size=100))
def test_no_control_survives_any_text(text):
    out = safe(text)
    assert not DANGEROUS_BYTES.search(out.encode("utf-8"))
    # Text with nothing unsafe is left exactly as it was.
    if not any(ord(ch) in UNSAFE for ch in text):
        assert out == text


def test_hostile_names_become_visible_escapes():
    assert safe("\x1b]52;c;cm0gLXJmIH4=\x07") == "\\x1b]52;c;cm0gLXJmIH4=\\x07"
    assert safe("\x1b]0;OWNED\x1b\\") == "\\x1b]0;OWNED\\x1b\\"
    assert safe("\x1b[2J\x1b[31m") == "\\x1b[2J\\x1b[31m"
    assert safe("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert safe("\x9b2J\x9d0;x") == "\\x9b2J\\x9d0;x"
    assert safe("sshd\u202egnp.exe") == "sshd\\u202egnp.exe"
    assert safe("ss\u200bhd") == "ss\\u200bhd"
    assert safe("\udcff") == "\\udcff"
    assert safe("nginx: worker") == "nginx: worker"
    assert safe("box ━ │ é 日本") == "box ━ │ é 日本"


def test_safe_lines_keeps_newlines_only():
    assert safe_lines("a\x1b[2J\nb\x07") == "a\\x1b[2J\nb\\x07"


def test_table_cells_escape_and_json_keeps_the_original():
    name = "\x1b]52;c;ZWNobyBoaQ==\x07x"
    table = Table("t", "t", (Column("pid", "PID"), Column("comm", "COMM", numeric=False, fmt=str)), ((1, name),))
    text = "\n".join(render_table(table))
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]52;c;ZWNobyBoaQ==\\x07x" in text
    assert json.loads(json.dumps({"comm": name}))["comm"] == name
