"""A command on a pseudo-terminal of our own, with every byte it writes to
the terminal kept: what tmux would interpret is checked raw here."""

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time


class PtyRun:
    def __init__(self, argv, width=120, height=30, env=None):
        self.output = bytearray()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its stdin, stdout and stderr
            try:
                os.execvpe(argv[0], argv, {**os.environ, "TERM": "xterm-256color", **(env or {})})
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        self.status = None

    def pump(self, seconds):
        """Read what the command writes for ``seconds``."""
        deadline = time.monotonic() + seconds
        if self.fd is None:  # hung up: nothing more to read
            time.sleep(seconds)
            return
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.output += data

    def wait_for(self, needle, timeout=60.0):
        deadline = time.monotonic() + timeout
        while needle not in self.output and time.monotonic() < deadline:
            self.pump(0.1)
            if self.poll() is not None:
                break
        return needle in self.output

    def wait_after(self, mark, needle, timeout):
        """Whether ``needle`` shows in what was written after ``mark`` (a
        length of ``output``) within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while needle not in self.output[mark:] and time.monotonic() < deadline:
            self.pump(0.1)
        return needle in self.output[mark:]

    def send(self, data):
        os.write(self.fd, data)

    def poll(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def wait(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            self.pump(0.1)
        return self.status

    def hangup(self):
        """Close our side of the terminal, once. A second close of the same
        number could close a file another thread of the run (the program
        sampler) has opened meanwhile under that number."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def close(self):
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        self.hangup()
