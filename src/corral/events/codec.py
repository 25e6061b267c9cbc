"""The JSON form of events: `{"v": 1, "kind": ..., <fields>}`, as the store and a web
server write them. Decoding goes by each field's declared type, so a new event needs no
decoder of its own."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from corral.events.types import Event
from corral.models import Cost, Usage

SCHEMA_VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, Usage | Cost):
        return value.to_dict()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON-ready form: `{"v": 1, "kind": ..., <fields>}`."""
    data: dict[str, Any] = {"v": SCHEMA_VERSION, "kind": event.kind}
    for f in dataclasses.fields(event):
        data[f.name] = _encode(getattr(event, f.name))
    return data


def _identity(value: Any) -> Any:
    return value


def _decoder(hint: Any) -> Callable[[Any], Any]:  # one return per type
    """How to turn the JSON form of a value back into a value of type `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if set(kinds) == {Decimal, int}:
            return lambda v: v if v is None or isinstance(v, int) else Decimal(v)
        if len(kinds) == 1:
            inner = _decoder(kinds[0])
            return lambda v: None if v is None else inner(v)
        return _identity
    if origin is tuple:
        return tuple
    if origin is dict:
        values = _decoder(args[1]) if len(args) == 2 else _identity
        if values is _identity:
            return _identity
        return lambda v: {k: values(x) for k, x in v.items()}
    if hint is Decimal:
        return Decimal
    if hint is Usage:
        return Usage.from_dict
    if hint is Cost:
        return Cost.from_dict
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    return _identity


_DECODERS: dict[str, dict[str, Callable[[Any], Any]]] = {}


def _decoders(cls: type[Event]) -> dict[str, Callable[[Any], Any]]:
    """Each field's decoder, worked out once per event class from its type hints."""
    found = _DECODERS.get(cls.kind)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _DECODERS[cls.kind] = {
            f.name: _decoder(hints[f.name]) for f in dataclasses.fields(cls)
        }
    return found


def _event_class(kind: str) -> type[Event]:
    # walked on demand (not cached at import) so that event classes defined later count
    stack: list[type[Event]] = [Event]
    while stack:
        cls = stack.pop()
        if cls.__dict__.get("kind") == kind:
            return cls
        stack.extend(cls.__subclasses__())
    raise KeyError(f"unknown event kind {kind!r}")


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event written by `event_to_dict` (unknown keys are ignored)."""
    cls = _event_class(data["kind"])
    decoders = _decoders(cls)
    kwargs = {k: decoders[k](v) for k, v in data.items() if k in decoders}
    return cls(**kwargs)
