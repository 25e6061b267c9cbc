"""genai-prices' answers for a model, remembered between commands.

Looking a model up in genai-prices costs a run 0.1-0.15 s of CPU however few events it
prices: importing the package builds every provider's price objects. The answer depends
only on what is installed, so a process that has not imported genai-prices yet first
looks in this cache:

- the key is the interpreter, the genai-prices package (its folder, and the size and
  mtime of each of its modules: an upgrade or an edit changes it) and corral's own
  pricing module (which turns genai-prices' answer into `Rates`);
- only answers that cannot change with the time of the request are kept: a model that
  genai-prices does not know (None), or one whose prices are a single `ModelPrice`
  (conditional prices, such as off-peak hours or a price from a given date on, are
  looked up every time), and only from genai-prices' bundled data (a snapshot a program
  set or updated in the process is never cached, and never bypassed: the cache is read
  only while genai-prices is not imported);
- the file is private (0600 in a 0700 folder, the user's own) and corral's format, else
  it is not trusted and genai-prices answers, exactly as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import zlib
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from corral.entrycache import _private, _stat, cache_folder

if TYPE_CHECKING:
    from corral.budget.pricing import Rates

FORMAT = 1
MAX_ENTRIES = 512  # a file past this starts again empty: it never grows without bound
_FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


class Missing:
    """No answer in the cache (unlike None: genai-prices does not know the model)."""


MISSING = Missing()

# the cache as this process read it, once: (path, key, entries) under "state"
_memo: dict[str, tuple[str, list[str], dict[str, Any]]] = {}


def lookup(model: str, provider_id: str | None) -> Rates | Missing | None:
    """The remembered answer for (model, provider), or MISSING when there is none or
    genai-prices is imported already (then it answers, as cheaply)."""
    if _genai_imported():
        return MISSING
    state = _state()
    if state is None:
        return MISSING
    entry = state[2].get(_name(model, provider_id), MISSING)
    if entry is None or isinstance(entry, Missing):
        return entry
    return _rates(entry)


def remember(model: str, provider_id: str | None, rates: Rates | None) -> None:
    """Keep genai-prices' answer (the caller checked it may be kept: see the docstring)."""
    state = _state()
    if state is None:
        return
    path, key, entries = state
    name, row = _name(model, provider_id), None if rates is None else _row(rates)
    if name in entries and entries[name] == row:
        return  # known already: nothing to write
    if len(entries) >= MAX_ENTRIES:
        entries.clear()
    entries[name] = row
    data = json.dumps({"format": FORMAT, "key": key, "entries": entries}, sort_keys=True)
    with contextlib.suppress(OSError):  # a read-only home keeps working, uncached
        _write(path, data.encode())


def _genai_imported() -> bool:
    return "genai_prices" in sys.modules


def bundled_snapshot() -> bool:
    """Whether genai-prices answers from its bundled data (no snapshot set in-process)."""
    from genai_prices import data_snapshot

    return getattr(data_snapshot, "_custom_snapshot", True) is None


def timeless(model_info: object) -> bool:
    """Whether a model's prices cannot depend on the time of the request."""
    from genai_prices.types import ModelPrice

    return isinstance(getattr(model_info, "prices", None), ModelPrice)


def _state() -> tuple[str, list[str], dict[str, Any]] | None:
    if "state" not in _memo:
        key = fingerprint()
        if key is None:
            return None
        interpreter = f"{sys.executable}\0{sys.version}"
        folder = os.path.join(os.path.dirname(cache_folder()), "prices")
        path = os.path.join(folder, f"rates-{zlib.crc32(interpreter.encode()):08x}.json")
        _memo["state"] = (path, key, _read(path, key))
    return _memo["state"]


def fingerprint() -> list[str] | None:
    """What genai-prices' answers depend on, as text; None when it is not installed."""
    from importlib.util import find_spec

    try:
        spec = find_spec("genai_prices")
    except (ImportError, ValueError):
        return None
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not folders:
        return None
    folder = folders[0]
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".py"))
    except OSError:
        return None
    key = [f"format {FORMAT}", sys.version, sys.executable, f"path {folder!r}"]
    key += [f"{name!r} {_stat(os.path.join(folder, name))}" for name in names]
    pricing = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pricing.py")
    key.append(f"pricing {_stat(pricing)}")
    return key


def _name(model: str, provider_id: str | None) -> str:
    return f"{provider_id or ''}\0{model}"


def _row(rates: Rates) -> dict[str, str]:
    row = {field: str(getattr(rates, field)) for field in _FIELDS}
    row["source"] = rates.source
    return row


def _rates(row: dict[str, str]) -> Rates | Missing:
    from corral.budget.pricing import Rates

    try:
        values = {field: Decimal(row[field]) for field in _FIELDS}
        source = row["source"]
    except (KeyError, TypeError, InvalidOperation):
        return MISSING
    if not isinstance(source, str) or not all(v.is_finite() for v in values.values()):
        return MISSING
    return Rates(**values, source=source)


def _read(path: str, key: list[str]) -> dict[str, Any]:
    try:
        if not (_private(os.path.dirname(path), 0o700) and _private(path, 0o600)):
            return {}
        with open(path, "rb") as handle:
            document = json.loads(handle.read())
        if document.get("format") != FORMAT or document.get("key") != key:
            return {}
        entries = document["entries"]
        if isinstance(entries, dict) and all(
            isinstance(k, str) and (v is None or isinstance(v, dict)) for k, v in entries.items()
        ):
            return entries
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass  # missing, unreadable or not ours: genai-prices answers
    return {}


def _write(path: str, data: bytes) -> None:
    from pathlib import Path

    from corral.private import private_dir, replace_private

    folder = os.path.dirname(path)
    private_dir(Path(folder), below=Path(folder))  # only our own folder is tightened
    if _private(folder, 0o700):
        replace_private(Path(path), data)
