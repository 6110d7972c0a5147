"""The console's first screen, drawn before Textual loads: laid out within
the terminal, untrusted text made safe, keys typed meanwhile kept for the
console, and the terminal's settings back as they were however the console
ends (Textual's exit, or an error before Textual started)."""

import os
import re
import shlex
import sys

import pytest
from ptyrun import PtyRun
from testenv import scaled

from bpftop.first_paint import frame

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPFTOP = f"{shlex.quote(sys.executable)} -m bpftop"
PAINTED = b"starting: loading the console"
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def rows(text):
    """Row number -> the visible text ``frame`` puts on that row."""
    parts = re.split(r"\x1b\[(\d+);1H", text)
    return {int(row): CSI.sub("", body) for row, body in zip(parts[1::2], parts[2::2])}


def test_frame_lays_out_title_tabs_and_keys_within_the_terminal():
    text = frame("vm  Linux 6.1.0-57-amd64  interval 1s", ["Syscalls", "Disk", "TCP"], 1, 80, 24)
    shown = rows(text)
    assert shown[1] == " bpftop  vm  Linux 6.1.0-57-amd64  interval 1s"
    assert shown[2] == " 1 Syscalls  2 Disk  3 TCP"
    assert shown[24].startswith(" q quit")
    assert all(len(line) < 80 for line in shown.values())
    # The active tab's stretch of the rule is the bold one, under "2 Disk".
    bold = text.split("\x1b[3;1H", 1)[1].split("\x1b[1m", 1)[1].split("\x1b[0m", 1)[0]
    before = CSI.sub("", text.split("\x1b[3;1H", 1)[1].split("\x1b[1m", 1)[0])
    assert (len(before), len(bold)) == (shown[2].index("2 Disk"), len("2 Disk"))


def test_frame_cuts_every_line_at_the_right_edge():
    text = frame("h" * 200, ["Syscalls"] * 20, 19, 40, 10)
    assert all(len(line) <= 39 for line in rows(text).values())


def test_frame_keeps_control_characters_off_the_terminal():
    text = frame("evil\x1b]0;owned\x07\x1b[2J host", ["Sys\x1bcalls"], 0, 80, 24)
    assert "\x1b]" not in text and "\x07" not in text and "\x1b[2J" not in text
    assert "\x1bc" not in text


def _stty_after(term):
    """The ``stty -a`` the shell ran after bpftop ended, as words."""
    assert term.wait_for(b"speed", timeout=scaled(60)), term.output[-2000:]
    term.wait(timeout=scaled(10))
    return set(re.split(r"[\s;]+", term.output.rsplit(b"speed", 1)[1].decode(errors="replace")))


@pytest.mark.bpf
def test_console_paints_first_and_honours_a_key_typed_before_textual():
    """The first screen comes before Textual's; a q typed on it ends the
    console once Textual runs, and the terminal echoes and edits lines again."""
    term = PtyRun(["sh", "-c", f"cd {shlex.quote(ROOT)} && {BPFTOP} -d 1; echo rc=$?; stty -a"],
                  width=80, height=24)
    try:
        assert term.wait_for(PAINTED, timeout=scaled(30)), term.output[-2000:]
        assert b"SYSCALL" not in term.output  # nothing of Textual's yet: this is the first paint
        term.send(b"q")
        words = _stty_after(term)
        assert b"rc=0" in term.output
        assert {"echo", "icanon", "isig"} <= words, words
        assert term.output.count(b"\x1b[?1049l") >= 1
    finally:
        term.close()


@pytest.mark.bpf
def test_console_failing_before_textual_leaves_the_screen_and_says_why(tmp_path):
    """An error between the first paint and Textual (a recording that cannot
    be written): the screen is left, the message shows after it, and the
    terminal's settings are back."""
    target = shlex.quote(str(tmp_path / "no" / "such" / "dir" / "rec.bpftop"))
    term = PtyRun(["sh", "-c", f"cd {shlex.quote(ROOT)} && {BPFTOP} --record {target}; echo rc=$?; stty -a"],
                  width=80, height=24)
    try:
        words = _stty_after(term)
        out = term.output
        assert PAINTED in out
        left = out.rindex(b"\x1b[?1049l")
        assert out.index(PAINTED) < left < out.index(b"bpftop: cannot write"), out[-2000:]
        assert b"rc=2" in out  # RecordingError's exit code
        assert b"Traceback" not in out
        assert {"echo", "icanon"} <= words, words
    finally:
        term.close()
