"""The console's way out that no UI thread can block.

Textual writes to the terminal from an output thread fed by a bounded
queue. When the terminal goes away (an SSH client killed, a pane closed
while the shell ignores SIGHUP) or stops reading, that thread dies or
blocks, the main thread blocks on the full queue, and signal handlers that
run on the event loop never run: the console would hang with every
program attached. So signals and the terminal are watched from a thread of
their own: the C-level signal handler writes the signal number to a pipe
(``signal.set_wakeup_fd``), which this thread reads whatever the main
thread is doing. It asks the UI to exit; if the UI has not finished within
a grace period, it detaches what it can and ends the process itself
(the kernel frees every program whose last file descriptor closes).
"""

from __future__ import annotations

import os
import select
import signal
import termios
import threading
from typing import Any, Callable, List, Optional

SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
# Signals and a hang-up wake the thread at once; this is how often it also
# asks whether the UI's output still works (its writer can die without a
# hang-up). Four times a second was 0.07 % of a core on an idle console.
HEALTH_CHECK_MS = 1000
TERMINAL_LOST = 128 + signal.SIGHUP  # the terminal going away is a hang-up
_RESET = b"\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?2004l\x1b[?1004l"


def terminal_lost(fd: int = 0) -> bool:
    """The terminal on ``fd`` has hung up (its pty closed, the SSH session
    gone)."""
    poller = select.poll()
    poller.register(fd, 0)
    try:
        return any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in poller.poll(0))
    except OSError:
        return True


class Lifeline:
    def __init__(
        self,
        request_exit: Callable[[int], bool],
        cleanup: Callable[[], None],
        healthy: Callable[[], bool] = lambda: True,
        terminal_fd: int = 0,
        grace: float = 3.0,
    ) -> None:
        """``request_exit(code)`` asks the UI to exit (False when it cannot
        be asked); ``cleanup`` detaches; ``healthy`` is False once the UI's
        output has failed."""
        self.request_exit = request_exit
        self.cleanup = cleanup
        self.healthy = healthy
        self.terminal_fd = terminal_fd
        self.grace = grace
        self.code: Optional[int] = None  # why the console ended, if it was us
        self._done = threading.Event()
        self._pipe = (-1, -1)
        self._saved_tty: Optional[List[Any]] = None
        self._old_handlers: dict = {}

    def start(self) -> None:
        """In the main thread, before the UI starts."""
        try:
            self._saved_tty = termios.tcgetattr(self.terminal_fd)
        except (termios.error, OSError):
            self._saved_tty = None
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pipe = (r, w)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in SIGNALS:
            # A Python handler that does nothing: the C handler before it
            # has written the signal number to the pipe.
            self._old_handlers[sig] = signal.signal(sig, lambda *_: None)
        threading.Thread(target=self._watch, name="bpftop-lifeline", daemon=True).start()

    def stop(self) -> None:
        """The UI has ended: signals go back to the handlers from before."""
        self._done.set()
        signal.set_wakeup_fd(-1)
        try:
            os.write(self._pipe[1], b"\0")  # no signal's number: the thread wakes and sees it is done
        except OSError:
            pass
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)

    def _watch(self) -> None:
        r = self._pipe[0]
        poller = select.poll()
        poller.register(r, select.POLLIN)
        # Hang-up and errors are always reported; nothing else is asked for.
        poller.register(self.terminal_fd, 0)
        while not self._done.is_set():
            code = None
            for fd, events in poller.poll(HEALTH_CHECK_MS):
                if fd == r:
                    try:
                        data = os.read(r, 64)
                    except BlockingIOError:
                        continue
                    # Every signal with a Python handler is written here,
                    # SIGWINCH (Textual's) too: only ours end the console.
                    ours = [sig for sig in data if sig in SIGNALS]
                    if ours:
                        code = 128 + ours[0]
                elif events & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    code = TERMINAL_LOST
            if code is None and not self.healthy():
                code = TERMINAL_LOST  # the UI could not write to the terminal
            if code is not None and not self._done.is_set():
                self._end(code)
                return

    def _end(self, code: int) -> None:
        self.code = code
        if self.request_exit(code) and self._done.wait(self.grace):
            return
        # The UI is stuck: detach (bounded), put the terminal back, leave.
        worker = threading.Thread(target=self.cleanup, daemon=True)
        worker.start()
        worker.join(1.0)  # within the 5 s the operator may wait, with the grace above
        self._restore_terminal()
        os._exit(code)

    def _restore_terminal(self) -> None:
        fd = self.terminal_fd
        try:
            os.set_blocking(fd, False)
            os.write(fd, _RESET)
        except OSError:
            pass
        if self._saved_tty is not None:
            try:
                termios.tcsetattr(fd, termios.TCSANOW, self._saved_tty)
            except (termios.error, OSError):
                pass
