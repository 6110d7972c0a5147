"""A real terminal for end-to-end tests: a private tmux server running one
command, with keys sent and the screen read back."""

import os
import shlex
import subprocess
import time


class Terminal:
    def __init__(self, socket_name, width=100, height=30):
        # One tmux server per test process: two test runs on one machine
        # (another checkout, CI beside a developer) must not kill each
        # other's terminal.
        self.socket = f"{socket_name}-{os.getpid()}"
        self.width, self.height = width, height

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False)

    def start(self, command, env=None):
        """Run ``command`` (a shell string); the pane stays after it exits."""
        exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (env or {}).items())
        self.tmux("kill-server")
        res = self.tmux("new-session", "-d", "-s", "t", "-x", str(self.width), "-y", str(self.height),
                        "sh", "-c", exports + command + "; sleep 600")
        assert res.returncode == 0, res.stderr

    def keys(self, *keys, literal=False):
        args = ["send-keys", "-t", "t"] + (["-l"] if literal else []) + list(keys)
        self.tmux(*args)

    def type(self, text):
        self.keys(text, literal=True)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def wait_for(self, text, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown if isinstance(text, str) else text(shown):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"never saw {text!r} on the screen:\n{self.screen()}")

    def wait_steady(self, cond, samples=5, timeout=30.0, what=None):
        """Until ``cond(screen)`` holds on ``samples`` captures in a row: a
        screen that only passes through the wanted state does not count."""
        deadline = time.monotonic() + timeout
        run = 0
        while time.monotonic() < deadline:
            shown = self.screen()
            run = run + 1 if cond(shown) else 0
            if run >= samples:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"never steadily saw {what or cond!r} on the screen:\n{self.screen()}")

    def resize(self, width, height):
        self.tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def close(self):
        self.tmux("kill-server")


def active_tab(screen, labels):
    """Which of ``labels`` (the tab titles as shown, in order) the tab bar
    underlines: Textual draws the underline's highlight between a ╸ and a
    ╺ on the line below the titles. None when no tab bar is on screen."""
    lines = screen.splitlines()
    for i, line in enumerate(lines[:-1]):
        if all(label in line for label in labels):
            bar = lines[i + 1]
            left, right = bar.find("╸"), bar.find("╺")
            if left < 0 or right < left:
                return None
            middle = (left + right) / 2
            for label in labels:
                start = line.find(label)
                if start <= middle < start + len(label):
                    return label
    return None
