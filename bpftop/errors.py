"""Errors with a message meant for the operator; the CLI prints the message,
never a traceback."""


class BpftopError(Exception):
    """Anything bpftop reports as one line and an exit code."""

    exit_code = 1


class UsageError(BpftopError):
    """The command cannot run the way it was started (like a bad argument)."""

    exit_code = 2


class PrivilegeError(BpftopError):
    exit_code = 2


class FeatureError(BpftopError):
    """The kernel or the system lacks something a probe needs."""

    exit_code = 2


class NoStrategyError(FeatureError):
    """No rung of a collector's hook ladder could be loaded."""
