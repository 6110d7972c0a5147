"""Textual's Linux driver, resumed only after a suspend of its own.

When a terminal hangs up (an SSH session dropped, a tmux server killed),
the kernel sends the session leader SIGCONT along with SIGHUP. Textual
takes every SIGCONT for the end of a Ctrl-Z and puts the terminal back into
application mode, even after the UI has ended: its new input thread then
reads end-of-file from the dead terminal in a loop and, not being a daemon
thread, keeps the process from ever exiting (found at 70% of a core, fifty
minutes after a `q`). Here SIGCONT resumes only what a SIGTSTP suspended.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any, Callable, Optional, Union

from textual.drivers.linux_driver import LinuxDriver

from . import first_paint

Handler = Union[Callable[[int, Optional[FrameType]], Any], int, None]


class ConsoleDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # installs Textual's SIGTSTP and SIGCONT handlers
        self._in_application_mode = False
        # From a SIGTSTP until its SIGCONT has redrawn the screen: Textual's
        # output thread is stopped meanwhile, and that is no lost terminal.
        self.suspended = False
        self._textual_tstp: Handler = signal.signal(signal.SIGTSTP, self._on_tstp)
        self._textual_cont: Handler = signal.signal(signal.SIGCONT, self._on_cont)

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
