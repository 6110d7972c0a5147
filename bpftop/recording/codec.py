"""Snapshots to JSON values and back, exactly: a snapshot read back from a
recording renders the same text as the one taken live.

Dataclasses carry their class name, dicts keep non-string keys, tuples come
back as tuples and enums as enums. Only classes from bpftop.model can be
named, so a recording cannot make the reader build anything else.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import pkgutil
from typing import Any, Dict, Iterator, Optional, Tuple, Type

from .. import model


class CodecError(ValueError):
    pass


def _model_types() -> Dict[str, Type[Any]]:
    types: Dict[str, Type[Any]] = {}
    for info in pkgutil.iter_modules(model.__path__):
        module = importlib.import_module(f"{model.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__ and (
                dataclasses.is_dataclass(value) or issubclass(value, enum.Enum)
            ):
                if value.__name__ in types and types[value.__name__] is not value:
                    raise CodecError(f"two model types are called {value.__name__}")
                types[value.__name__] = value
    return types


_TYPES: Dict[str, Type[Any]] = {}


def types() -> Dict[str, Type[Any]]:
    if not _TYPES:
        _TYPES.update(_model_types())
    return _TYPES


def encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return {"@e": type(value).__name__, "v": value.value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: Dict[str, Any] = {"@": type(value).__name__}
        for f in dataclasses.fields(value):
            if f.init:
                out[f.name] = encode(getattr(value, f.name))
        return out
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"@d": [[encode(k), encode(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CodecError(f"cannot record a {type(value).__name__}")


def decode(value: Any) -> Any:
    if isinstance(value, _Raw):
        return value.value
    if isinstance(value, list):
        return tuple(decode(v) for v in value)
    if isinstance(value, dict):
        if "@d" in value:
            return {decode(k): decode(v) for k, v in value["@d"]}
        if "@e" in value:
            cls = types().get(value["@e"])
            if cls is None or not issubclass(cls, enum.Enum):
                raise CodecError(f"unknown enum {value['@e']!r}")
            return cls(value["v"])
        name = value.get("@")
        cls = types().get(name) if isinstance(name, str) else None
        if cls is None or not dataclasses.is_dataclass(cls):
            raise CodecError(f"unknown record type {name!r}")
        kwargs = {k: decode(v) for k, v in value.items() if k != "@"}
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise CodecError(f"{name}: {e}") from None
    return value


# -- deltas against the tab's previous snapshot ------------------------------
# Long tuples change little from one interval to the next: an event list,
# newest first, gains a few entries at the head and loses some at the tail;
# a history, oldest first, drops its head and grows at the end. Each is
# written as the change against the previous snapshot of the same tab.

_MIN_DELTA = 8  # shorter tuples are cheaper written whole


def _occurrences(seq: Tuple[Any, ...], item: Any, limit: int = 64) -> Iterator[int]:
    start = 0
    for _ in range(limit):
        try:
            i = seq.index(item, start)
        except ValueError:
            return
        yield i
        start = i + 1


def _tuple_delta(new: tuple, old: tuple) -> Optional[Dict[str, Any]]:
    if new == old:
        return {"@same": 1}
    if not new or not old:
        return None
    for k in _occurrences(new, old[0]):  # new entries at the head
        keep = len(new) - k
        if keep <= len(old) and new[k:] == old[:keep]:
            return {"@head": [encode(v) for v in new[:k]], "@keep": keep}
    for j in _occurrences(old, new[0]):  # old entries dropped from the head
        kept = len(old) - j
        if kept <= len(new) and new[:kept] == old[j:]:
            return {"@from": j, "@tail": [encode(v) for v in new[kept:]]}
    return None


def encode_snapshot(snap: Any, previous: Any = None) -> Dict[str, Any]:
    out: Dict[str, Any] = encode(snap)
    if previous is None or type(previous) is not type(snap):
        return out
    for f in dataclasses.fields(snap):
        if not f.init:
            continue
        new, old = getattr(snap, f.name), getattr(previous, f.name)
        if isinstance(new, tuple) and isinstance(old, tuple) and len(new) >= _MIN_DELTA:
            delta = _tuple_delta(new, old)
            if delta is not None:
                out[f.name] = delta
    return out


def decode_snapshot(value: Any, previous: Any = None) -> Any:
    if not isinstance(value, dict) or "@" not in value:
        return decode(value)
    fields = dict(value)
    for name, v in value.items():
        if not (isinstance(v, dict) and ({"@same", "@head", "@from"} & set(v))):
            continue
        old = getattr(previous, name, None) if previous is not None else None
        if not isinstance(old, tuple):
            raise CodecError(f"{name} refers to a previous snapshot that is not there")
        if "@same" in v:
            new = old
        elif "@head" in v:
            new = tuple(decode(x) for x in v["@head"]) + old[: int(v["@keep"])]
        else:
            new = old[int(v["@from"]):] + tuple(decode(x) for x in v["@tail"])
        fields[name] = _Raw(new)
    return decode(fields)


class _Raw:
    """An already decoded value inside a structure still to decode."""

    def __init__(self, value: Any) -> None:
        self.value = value
