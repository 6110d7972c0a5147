"""Keeping native output (clang, libbpf, BCC) off the operator's terminal
while Python's own messages still reach it: one context for the console,
one for batch and doctor runs."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator


def screen_fd() -> int:
    """The terminal the console draws on: stderr's, unless stderr was sent
    elsewhere (2>log): then stdout's, never into the log."""
    return 2 if os.isatty(2) else 1


@contextlib.contextmanager
def terminal_for_tui() -> Iterator[None]:
    """Keep the terminal for Textual alone.

    Textual draws on the stream behind ``sys.__stderr__``; native code that
    writes to fd 2 from a collector thread would scribble over the screen.
    Compiles and attaches keep their own output (loader.native_output_kept);
    anything else native on fd 2 goes to an unlinked temporary file, printed
    after the TUI closes when BPFTOP_DEBUG=1. Textual gets a duplicate of the
    terminal.
    """
    saved_fd = os.dup(2)
    term = os.fdopen(os.dup(screen_fd()), "w", encoding=getattr(sys.__stderr__, "encoding", None) or "utf-8")
    capture = tempfile.TemporaryFile(mode="w+b")
    old = sys.__stderr__, sys.stderr
    sys.__stderr__ = sys.stderr = term  # type: ignore[misc]  # Textual draws on sys.__stderr__
    os.dup2(capture.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        sys.__stderr__, sys.stderr = old  # type: ignore[misc]
        term.close()
        capture.seek(0)
        stray = capture.read().decode("utf-8", "replace").strip()
        capture.close()
        if stray and os.environ.get("BPFTOP_DEBUG"):
            print(stray, file=sys.stderr)


@contextlib.contextmanager
def python_stderr_apart() -> Iterator[None]:
    """Python's own stderr on a duplicate of fd 2.

    While a collector compiles, the loader points fd 2 elsewhere to keep
    clang's and libbpf's messages off the user's terminal (they stay with the
    hook attempt, for ``bpftop doctor -v``). A message another thread prints
    through sys.stderr meanwhile must still reach the user, so Python writes
    to a duplicate that the loader leaves alone.
    """
    if sys.stderr is not sys.__stderr__:
        yield  # a caller has already put stderr elsewhere (tests): leave it
        return
    try:
        fd = os.dup(2)
    except OSError:  # started with fd 2 closed: nothing to keep apart
        yield
        return
    old = sys.stderr
    stream = os.fdopen(fd, "w", encoding=getattr(old, "encoding", None) or "utf-8",
                       errors="backslashreplace", buffering=1)
    sys.stderr = stream
    try:
        yield
    finally:
        sys.stderr = old
        with contextlib.suppress(OSError):
            stream.close()
