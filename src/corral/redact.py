"""No secret at rest: which values are secret, and their removal from what corral writes.

A value is secret when it is the value of an environment variable whose name looks secret
(`*_KEY`, `*_TOKEN`, `*SECRET*`, `*PASSWORD*`, plus the patterns of `CORRAL_SECRET_NAMES`
and of a flow's `secret_names`), or of a job `env:` entry named in its `secret_env`.
A `Redactor` knows a run's secret values and replaces each of them by `***` in every
event before the history, the joblog, the `--json` summary or the terminal see it;
passwords in URLs (`scheme://user:PASSWORD@host`) go the same way. Values shorter than
`MIN_SECRET` characters are not searched for (they would blank out ordinary words), but
an env entry with a secret name is always shown as `***`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

MASK = "***"
MIN_SECRET = 6
DEFAULT_PATTERNS = ("*_KEY", "*_TOKEN", "*SECRET*", "*PASSWORD*", "*_PASS", "*_PAT")
PATTERNS_VAR = "CORRAL_SECRET_NAMES"

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)[^\s/@]+(?=@)")

T = TypeVar("T")


def name_patterns(environ: Mapping[str, str], extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The secret-name patterns: the defaults, `CORRAL_SECRET_NAMES` (comma-separated)
    and `extra` (a flow's `secret_names`)."""
    configured = [p.strip() for p in environ.get(PATTERNS_VAR, "").split(",") if p.strip()]
    return (*DEFAULT_PATTERNS, *configured, *extra)


def is_secret_name(name: str, patterns: Iterable[str]) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in patterns)


def strip_url_passwords(text: str) -> str:
    """`postgresql://u:pw@host/db` becomes `postgresql://u:***@host/db`."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


class Redactor:
    """A run's secret values, and their replacement in text, values and events."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_PATTERNS) -> None:
        self.patterns = tuple(patterns)
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._longest_first: tuple[str, ...] = ()

    def add(self, value: str) -> None:
        if len(value) >= MIN_SECRET and value not in self._values:
            self._values.add(value)
            longest_first = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, longest_first)))
            self._longest_first = tuple(longest_first)

    def add_environ(self, environ: Mapping[str, str], marked: Iterable[str] = ()) -> None:
        """Learn the values of `environ` whose names are secret or `marked`."""
        chosen = set(marked)
        for name, value in environ.items():
            if name in chosen or is_secret_name(name, self.patterns):
                self.add(value)

    def is_secret(self, name: str, marked: Iterable[str] = ()) -> bool:
        return name in marked or is_secret_name(name, self.patterns)

    def text(self, text: str) -> str:
        if self._pattern is not None and self._holds_secret(text):
            text = self._pattern.sub(MASK, text)
        if "://" in text:
            text = strip_url_passwords(text)
        return text

    def _holds_secret(self, text: str) -> bool:
        # a search for each value is several times faster than the pattern's, which is
        # needed only when one of them is there
        return bool(self._longest_first) and any(secret in text for secret in self._longest_first)

    def value(self, value: T) -> T:
        """`value` with every string inside it redacted (dicts, lists, tuples, dataclasses)."""
        names = _INIT_FIELDS.get(type(value))  # an event of a kind seen before: at once
        if names is not None:
            return self._fields(value, names)  # type: ignore[no-any-return]  # same shape
        return self._walk(value)  # type: ignore[no-any-return]  # same shape as given

    def env(self, env: Mapping[str, Any], marked: Iterable[str] = ()) -> dict[str, Any]:
        """A job's env as stored: secret names show `***`, the rest is redacted text."""
        return {k: MASK if self.is_secret(k, marked) else self._walk(v) for k, v in env.items()}

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            # an enum member is a str too: its value is vocabulary, never a secret
            return self.text(value) if type(value) is str else value
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._walk(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._fields(value, _init_fields(type(value)))
        return value

    def _fields(self, value: Any, names: tuple[str, ...]) -> Any:
        # once per agent event on the bus: the field names are looked up once per class,
        # and a string that holds no secret value and no URL is passed over (the search
        # of `_holds_secret`, inline)
        values = _getter(type(value), names)(value)
        if _ATOMIC.issuperset(map(type, values)):
            return value  # no string nor container in it (a Usage): nothing to redact
        changes = {}
        secrets = self._longest_first
        for name in names:
            before = getattr(value, name)
            if type(before) is str:
                if "://" not in before and not (
                    secrets and any(secret in before for secret in secrets)
                ):
                    continue
                after: Any = self.text(before)
            elif isinstance(before, (dict, list, tuple)):  # a tuple: faster than a union
                after = self._walk(before)
            else:
                continue
            if after != before:
                changes[name] = after
        # unchanged events stay the same objects (the bus's hot path)
        return dataclasses.replace(value, **changes) if changes else value


_INIT_FIELDS: dict[type, tuple[str, ...]] = {}
# values `_fields` passes over whatever they are: neither a string nor a container
_ATOMIC = frozenset({int, float, bool, type(None), Decimal})
_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _getter(cls: type, names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of a class's fields, as a tuple, in one call."""
    getter = _GETTERS.get(cls)
    if getter is None:
        if not names:
            getter = _GETTERS[cls] = lambda value: ()
        elif len(names) == 1:
            one = operator.attrgetter(names[0])
            getter = _GETTERS[cls] = lambda value: (one(value),)
        else:
            getter = _GETTERS[cls] = operator.attrgetter(*names)
    return getter


def _init_fields(cls: type) -> tuple[str, ...]:
    """The fields of a dataclass that its constructor takes (what `replace` can set)."""
    names = _INIT_FIELDS.get(cls)
    if names is None:
        names = _INIT_FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    return names
