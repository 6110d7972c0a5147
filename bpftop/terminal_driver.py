"""Textual's Linux driver, resumed only after a suspend of its own.

When a terminal hangs up (an SSH session dropped, a tmux server killed),
the kernel sends the session leader SIGCONT along with SIGHUP. Textual
takes every SIGCONT for the end of a Ctrl-Z and puts the terminal back into
application mode, even after the UI has ended: its new input thread then
reads end-of-file from the dead terminal in a loop and, not being a daemon
thread, keeps the process from ever exiting (found at 70% of a core, fifty
minutes after a `q`). Here SIGCONT resumes only what a SIGTSTP suspended.

Its input thread also waits for a key without a timeout: Textual's wakes
ten times a second to look at its exit event (0.13 % of a core, most of
what an idle console spends outside its two working threads).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import threading
from codecs import getincrementaldecoder
from types import FrameType
from typing import Any, Callable, List, Optional, Tuple, Union

from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

from . import first_paint
from .screens.textual_internals import parser_wait

Handler = Union[Callable[[int, Optional[FrameType]], Any], int, None]


class _WakingEvent(threading.Event):
    """The driver's ``exit_event``, which also wakes the input thread
    waiting in select(): a byte on a pipe it watches."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd = wake_fd

    def set(self) -> None:
        super().set()
        with contextlib.suppress(OSError):  # full (it is woken already) or closed
            os.write(self._wake_fd, b"\0")


class ConsoleDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # installs Textual's SIGTSTP and SIGCONT handlers
        self._in_application_mode = False
        # From a SIGTSTP until its SIGCONT has redrawn the screen: Textual's
        # output thread is stopped meanwhile, and that is no lost terminal.
        self.suspended = False
        self._textual_tstp: Handler = signal.signal(signal.SIGTSTP, self._on_tstp)
        self._textual_cont: Handler = signal.signal(signal.SIGCONT, self._on_cont)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.exit_event = _WakingEvent(self._wake_w)

    def start_application_mode(self) -> None:
        self._in_application_mode = True
        super().start_application_mode()
        # The first paint turned echo and line editing off before Textual
        # loaded: what the terminal had before that is what to restore.
        saved = first_paint.adopt()
        if saved is not None:
            self.attrs_before = saved

    def stop_application_mode(self) -> None:
        self._in_application_mode = False
        super().stop_application_mode()

    def _on_tstp(self, signum: int, frame: Optional[FrameType]) -> None:
        if self._in_application_mode and callable(self._textual_tstp):
            self.suspended = True
            self._textual_tstp(signum, frame)  # leaves the screen, then stops the process
        else:
            os.kill(os.getpid(), signal.SIGSTOP)  # what SIGTSTP does by default

    def _on_cont(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.suspended and callable(self._textual_cont):
            self._textual_cont(signum, frame)
            self.suspended = False

    def close(self) -> None:
        super().close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run_input_thread(self) -> None:
        """Textual's input loop (``LinuxDriver.run_input_thread``), waking
        only for input, for the exit event, or when the key parser's wait
        for the rest of an escape sequence runs out."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        with contextlib.suppress(OSError):
            os.read(self._wake_r, 4096)  # a wake left from an earlier thread (before a Ctrl-Z)

        def feed(ready: List[Tuple[selectors.SelectorKey, int]]) -> None:
            for key, _mask in ready:
                if key.fd == self._wake_r:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 4096)
                    continue
                try:
                    data = os.read(self.fileno, 4096)
                except OSError:
                    data = b""  # EIO: the terminal hung up
                if not data:
                    # End of input (a pipe, a hung-up terminal): nothing more
                    # to wait for there; the lifeline ends the console.
                    selector.unregister(self.fileno)
                    continue
                text = decode(data)  # "" while a character's bytes are still coming
                if text:
                    for event in parser.feed(text):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                feed(selector.select(parser_wait(parser)))
            feed([])  # a lone Esc whose wait ran out as the thread was told to end
        finally:
            selector.close()
