"""A huge agent JSON line is shrunk while it is read: the same keys, the small values
intact, the big strings cut, valid JSON whatever the chunking (corral.execute.jsonshrink)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.execute import jsonshrink
from corral.execute.jsonshrink import Shrinker
from corral.execute.lines import LineSpool

TEXT = st.text(st.sampled_from(list('ab"\\\n\té€\u2028/x\x00')), max_size=300)
DOCS = st.fixed_dictionaries(
    {
        "type": st.just("user"),
        "usage": st.fixed_dictionaries({"input_tokens": st.integers(0, 10**9)}),
        "items": st.lists(TEXT, max_size=5),
        "nested": st.dictionaries(TEXT, TEXT, max_size=3),
    }
)


@pytest.fixture(autouse=True)
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonshrink, "STRING_KEEP", 40)
    monkeypatch.setattr(jsonshrink, "SMALL_KEEP", 16)  # keys stay whole
    monkeypatch.setattr(jsonshrink, "TOTAL_KEEP", 200)


def _shrink(raw: bytes, sizes: list[int]) -> bytes:
    shrinker = Shrinker()
    at, turn = 0, 0
    while at < len(raw):
        size = sizes[turn % len(sizes)]
        shrinker.feed(raw[at : at + size])
        at, turn = at + size, turn + 1
    return shrinker.result()


@settings(max_examples=300, deadline=None)
@given(doc=DOCS, ascii_only=st.booleans(), sizes=st.lists(st.integers(1, 64), min_size=1))
def test_any_chunking_gives_valid_json_with_the_same_structure(
    doc: dict[str, object], ascii_only: bool, sizes: list[int]
) -> None:
    raw = json.dumps(doc, ensure_ascii=ascii_only).encode()
    out = json.loads(_shrink(raw, sizes).decode("utf-8", "replace"))
    assert out["type"] == "user" and out["usage"] == doc["usage"]
    assert len(out["items"]) == len(doc["items"])  # type: ignore[arg-type]
    assert len(out["nested"]) <= len(doc["nested"])  # type: ignore[arg-type]
    for kept, whole in zip(out["items"], doc["items"], strict=True):  # type: ignore[call-overload]
        assert kept == whole or kept.endswith("…")


def test_small_strings_are_kept_exactly_and_big_ones_cut() -> None:
    raw = json.dumps({"id": "msg_1", "big": "y" * 1000, "after": "z"}).encode()
    out = json.loads(_shrink(raw, [7]))
    assert out == {"id": "msg_1", "big": "y" * 40 + "…", "after": "z"}


def test_a_line_spool_shrinks_an_agent_line_past_its_keep(tmp_path: Path) -> None:
    got: list[tuple[bytes, bool]] = []
    spool = LineSpool(
        str(tmp_path / "log"), lambda line, _o, cut: got.append((line, cut)), 100, compact_json=True
    )
    line = json.dumps({"type": "user", "content": "x" * 10_000, "usage": {"n": 5}}).encode()
    for at in range(0, len(line), 333):
        spool.feed(line[at : at + 333])
    spool.feed(b'\n{"small": 1}\n')
    spool.close()
    assert (tmp_path / "log").read_bytes() == line + b'\n{"small": 1}\n'  # the log: whole
    (first, cut), (second, cut2) = got
    assert cut and not cut2 and second == b'{"small": 1}'
    assert json.loads(first) == {"type": "user", "content": "x" * 40 + "…", "usage": {"n": 5}}
