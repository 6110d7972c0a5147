"""The config file: ``$XDG_CONFIG_HOME/bpftop/config.toml`` (default
``~/.config/bpftop/config.toml``) over ``/etc/bpftop/config.toml``, both
optional; the command line wins over both.

Every key is checked against ``KEYS`` when the file is read: an unknown key
or a value of the wrong type is one line naming the file, the key and what
was expected (exit 2), never a half-applied config. ``bpftop config``
prints the effective values and where each came from.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import UsageError
from .numtext import is_decimal
from .priority import DEFAULT_NICE
from .safetext import safe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Debian 12 has 3.11
    import tomli as tomllib

SYSTEM_PATH = Path("/etc/bpftop/config.toml")
DEFAULT_LISTEN = "127.0.0.1:9435"
DEFAULT = "default"


class ConfigError(UsageError):
    """A config file that cannot be used; exit 2 like a bad argument."""


@dataclass(frozen=True)
class Key:
    name: str  # dotted: "exporter.listen" is listen in [exporter]
    expected: str  # what the error message says was expected
    check: Callable[[Any], bool]
    default: Any
    help: str


def _number(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high


def _tab_list(v: Any) -> bool:
    from .tabs import TABS

    return isinstance(v, list) and all(isinstance(t, str) and t in TABS for t in v) and len(set(v)) == len(v)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_path(v: Any) -> bool:
    return isinstance(v, str) and v != "" and "\0" not in v


def _is_listen(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        parse_listen(v)
    except ValueError:
        return False
    return True


def _tab_names() -> str:
    from .tabs import TABS

    return ", ".join(TABS)


KEYS: Tuple[Key, ...] = (
    Key("interval", "a number of seconds from 0.1 to 3600", _number(0.1, 3600), 1.0, "refresh interval (-d)"),
    Key("tabs", "a list of tab ids ({tabs}), each once", _tab_list, [],
        "tabs to open, or to print in batch mode and export (--tab); empty: all"),
    Key("probes", "a list of tab ids ({tabs}), each once", _tab_list, None,
        "probes attached at start (--probes); unset: all"),
    Key("latency", "true or false", _is_bool, False,
        "time syscalls from the start (--latency; L switches it live; false: --no-latency)"),
    Key("nice", "a whole number from -20 to 19", lambda v: isinstance(v, int) and not isinstance(v, bool)
        and -20 <= v <= 19, DEFAULT_NICE, "the console's CPU priority (--nice); 0 leaves it as it is"),
    Key("snapshot_dir", "a directory path", _is_path, None, "where s and S save text snapshots (--snapshot-dir)"),
    Key("record.append", "true or false", _is_bool, False, "--record adds to an existing file (--record-append)"),
    Key("exporter.listen", "ADDR:PORT, e.g. \"127.0.0.1:9435\" or \"[::1]:9435\"", _is_listen, DEFAULT_LISTEN,
        "address the exporter serves on (--listen)"),
    Key("exporter.tls_cert", "a file path", _is_path, None, "TLS certificate for the exporter (--tls-cert)"),
    Key("exporter.tls_key", "a file path", _is_path, None, "TLS private key for the exporter (--tls-key)"),
    Key("exporter.top_n", "a whole number from 1 to 1000", lambda v: isinstance(v, int) and not isinstance(v, bool)
        and 1 <= v <= 1000, 10, "label limit: per-destination and per-process series kept (--top)"),
    Key("exporter.per_process", "true or false", _is_bool, False,
        "export per-process series, top_n of them (--per-process)"),
)
_BY_NAME = {k.name: k for k in KEYS}
_TABLES = {k.name.split(".")[0] for k in KEYS if "." in k.name}


def parse_listen(text: str) -> Tuple[str, int]:
    """``ADDR:PORT`` (``[v6]:PORT`` for IPv6) to (address, port); ValueError if not."""
    import ipaddress

    host, sep, port = text.rpartition(":")
    if not sep or not is_decimal(port) or not 0 < int(port) < 65536:
        raise ValueError(f"not ADDR:PORT: {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)
    else:
        ipaddress.IPv4Address(host)
    return host, int(port)


def user_path(env: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or ""
    # The XDG spec: a relative XDG_CONFIG_HOME is invalid and is ignored.
    root = Path(base) if base.startswith("/") else Path(env.get("HOME") or Path.home()) / ".config"
    return root / "bpftop" / "config.toml"


def system_path(env: Optional[Mapping[str, str]] = None) -> Path:
    """``/etc/bpftop/config.toml``; BPFTOP_SYSTEM_CONFIG names another
    (packagers, and tests that cannot write /etc)."""
    env = os.environ if env is None else env
    return Path(env.get("BPFTOP_SYSTEM_CONFIG") or SYSTEM_PATH)


def _flatten(path: Path, data: Mapping[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict):
            if name not in _TABLES:
                raise ConfigError(f"{safe(path)}: unknown table [{safe(name)}] (known: {', '.join(sorted(_TABLES))})")
            for sub, subvalue in value.items():
                out[f"{name}.{sub}"] = subvalue
        else:
            out[name] = value
    return out


def read_file(path: Path) -> Dict[str, Any]:
    """The checked values of one file by dotted key; {} when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        if not os.path.exists(path):
            return {}  # a directory on the way we may not search (another user's HOME): none for us

        raise ConfigError(f"{safe(path)}: cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{safe(path)}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{safe(path)}: not valid TOML: {e}") from None
    values = _flatten(path, data)
    for name, value in values.items():
        key = _BY_NAME.get(name)
        if key is None:
            known = ", ".join(k.name for k in KEYS)
            raise ConfigError(f"{safe(path)}: unknown key {name!r} (known: {known})")
        if not key.check(value):
            expected = key.expected.format(tabs=_tab_names())
            raise ConfigError(f"{safe(path)}: key {name!r} must be {expected}, not {value!r}")
    return values


@dataclass(frozen=True)
class Config:
    values: Mapping[str, Any]
    sources: Mapping[str, str]  # dotted key -> "default" or the file it came from

    def get(self, name: str) -> Any:
        return self.values[name]

    def given(self, name: str) -> bool:
        """Set by a file (not the built-in default)."""
        return self.sources[name] != DEFAULT


def load(paths: Optional[Sequence[Path]] = None) -> Config:
    """Defaults, then the system file, then the user file."""
    files = [system_path(), user_path()] if paths is None else list(paths)
    values = {k.name: k.default for k in KEYS}
    sources = {k.name: DEFAULT for k in KEYS}
    for path in files:
        for name, value in read_file(path).items():
            values[name] = value
            sources[name] = str(path)
    return Config(values, sources)


def describe(cfg: Config) -> List[str]:
    """``bpftop config``: one line per key, ``key = value  # from``."""

    def toml(value: Any) -> str:
        if value is None:
            return "(unset)"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            import json

            return json.dumps(value)  # a TOML basic string, control characters escaped
        if isinstance(value, list):
            return "[" + ", ".join(toml(v) for v in value) + "]"
        return repr(value)

    lines = []
    width = max(len(k.name) for k in KEYS)
    for key in KEYS:
        lines.append(f"{key.name.ljust(width)} = {toml(cfg.values[key.name])}  # {safe(cfg.sources[key.name])}; "
                     f"{key.help}")
    return lines
