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
from typing import Any, Dict, Type

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
