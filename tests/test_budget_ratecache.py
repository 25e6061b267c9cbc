"""The cache of genai-prices' answers: the same rates as genai-prices, never a stale one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.budget import pricing, ratecache
from corral.budget.pricing import PriceBook

# known with one price, known by a tool's provider, unknown, and conditional prices
MODELS = [
    ("claude-opus-5-5", "anthropic"),
    ("claude-haiku-4-5", "openai"),  # not openai's: found without the hint
    ("gpt-5", "openai"),
    ("gemini-2.5-pro", None),
    ("no-such-model-anywhere", "anthropic"),
    ("claude-sonnet-4-6", "anthropic"),  # a price from a given date on: never cached
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(ratecache, "_memo", {})
    return tmp_path / "xdg" / "corral" / "prices"


def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a new command sees it: the file read again, genai-prices not imported, and
    never asked (a lookup it would answer fails the test)."""
    monkeypatch.setattr(ratecache, "_memo", {})
    monkeypatch.setattr(ratecache, "_genai_imported", lambda: False)

    def not_asked(model: str, provider: str | None) -> object:
        raise AssertionError(f"genai-prices asked about {model}")

    monkeypatch.setattr(pricing, "_ask_genai_prices", not_asked)


def test_a_cached_answer_equals_genai_prices_own(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = {m: pricing._ask_genai_prices(m, p)[0] for m, p in MODELS}
    first = {m: pricing._genai_rates(m, p) for m, p in MODELS}
    assert first == direct
    assert [path.stat().st_mode & 0o777 for path in cache.iterdir()] == [0o600]
    assert cache.stat().st_mode & 0o777 == 0o700
    timeless = [(m, p) for m, p in MODELS if m != "claude-sonnet-4-6"]
    _fresh_process(monkeypatch)
    again = {m: pricing._genai_rates(m, p) for m, p in timeless}
    assert again == {m: direct[m] for m, _ in timeless}
    assert again["no-such-model-anywhere"] is None
    # conditional prices are asked again (here: the test's stand-in refuses)
    with pytest.raises(AssertionError, match="claude-sonnet-4-6"):
        pricing._genai_rates("claude-sonnet-4-6", "anthropic")


def test_a_changed_install_or_a_file_not_ours_is_not_trusted(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pricing._genai_rates("gpt-5", "openai")
    (path,) = cache.iterdir()
    document = json.loads(path.read_text())
    _fresh_process(monkeypatch)
    assert isinstance(ratecache.lookup("gpt-5", "openai"), pricing.Rates)

    def misses() -> bool:
        monkeypatch.setattr(ratecache, "_memo", {})
        return isinstance(ratecache.lookup("gpt-5", "openai"), ratecache.Missing)

    path.write_text(json.dumps({**document, "key": [*document["key"][:-1], "pricing 1 2"]}))
    os.chmod(path, 0o600)
    assert misses()  # genai-prices (or corral's pricing) changed
    path.write_text(json.dumps(document))
    os.chmod(path, 0o644)
    assert misses()  # readable by others: not corral's own
    os.chmod(path, 0o600)
    assert not misses()
    document["entries"]["openai\0gpt-5"]["input"] = "not a number"
    path.write_text(json.dumps(document))
    assert misses()
    path.write_text("{not json")
    assert misses()


def test_a_snapshot_set_in_the_process_is_used_and_never_cached(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratecache, "bundled_snapshot", lambda: False)
    assert pricing._genai_rates("gpt-5", "openai") is not None
    assert not cache.exists()


def test_a_command_with_a_warm_cache_does_not_import_genai_prices(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from corral.budget.pricing import PriceBook\n"
        "book = PriceBook()\n"
        "print(book.rates('claude-opus-5-5', tool='claude'), book.rates('nope-1', tool='claude'))\n"
        "print('genai_prices' in sys.modules)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        for _ in range(2)
    ]
    assert runs[0][1] == "True" and runs[1][1] == "False"
    assert runs[0][0] == runs[1][0] == f"{PriceBook().rates('claude-opus-5-5', tool='claude')} None"
