"""PriceBook: genai-prices lookups, exact Decimal arithmetic, price files, Claude's own prices."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage as GPUsage
from genai_prices import calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.budget.pricing import PriceBook, Rates, load_price_file
from corral.errors import CorralError
from corral.models import Cost, CostSource, Usage

DATA = Path(__file__).parent / "data" / "budget"
M = 1_000_000


def test_known_model_is_estimated_exactly() -> None:
    usage = Usage(input_tokens=12, cache_write_5m_tokens=18432, output_tokens=11)
    cost = PriceBook().price("claude-opus-5-5", usage, tool="claude")
    # NOTES §6: Claude Code charged exactly 0.092428 for this usage
    assert cost == Cost(Decimal("0.092428"), CostSource.ESTIMATED)


def test_decimal_sums_do_not_drift() -> None:
    book = PriceBook()
    one = book.price("claude-haiku-4-5", Usage(input_tokens=1, output_tokens=1))
    assert one.usd == Decimal("0.000006")
    total = Cost.zero()
    for _ in range(1000):
        total = total + one
    assert total.usd == Decimal("0.006")


@pytest.mark.parametrize("model", ["mock-unknown-model", "", "no-such-model-xyz"])
def test_unknown_model_is_unpriced_never_zero(model: str) -> None:
    cost = PriceBook().price(model, Usage(input_tokens=1000, output_tokens=10))
    assert cost == Cost(None, CostSource.UNPRICED)
    assert (cost + Cost(Decimal(1), CostSource.ESTIMATED)).source is CostSource.UNPRICED


@pytest.mark.parametrize(
    ("model", "tool", "kind", "per_mtok"),
    [
        ("claude-sonnet-4-5", "claude", "input_tokens", "3"),
        ("claude-sonnet-4-5", "claude", "output_tokens", "15"),
        ("claude-sonnet-4-5", "claude", "cache_read_tokens", "0.3"),
        ("claude-sonnet-4-5", "claude", "cache_write_5m_tokens", "3.75"),
        ("claude-sonnet-4-5", "claude", "cache_write_1h_tokens", "6"),
        # gpt-5 has no cache-write price: written tokens are billed as input
        ("gpt-5", "codex", "cache_write_5m_tokens", "1.25"),
        ("gpt-5", "codex", "cache_read_tokens", "0.125"),
        ("gemini-2.5-flash", "gemini", "output_tokens", "2.5"),
        ("gemini-2.5-flash", None, "output_tokens", "2.5"),
    ],
)
def test_each_token_kind_has_its_rate(
    model: str, tool: str | None, kind: str, per_mtok: str
) -> None:
    cost = PriceBook().price(model, Usage(**{kind: M}), tool=tool)
    assert cost == Cost(Decimal(per_mtok), CostSource.ESTIMATED)


def test_long_context_tier_is_not_applied_to_summed_usage() -> None:
    # 30 turns of 10k tokens each: no single request is long-context
    usage = Usage(input_tokens=300_000)
    assert PriceBook().price("claude-sonnet-4-5", usage).usd == Decimal("0.9")
    # genai-prices, given the sum as one request, would bill the 200k+ tier
    whole = calc_price(GPUsage(input_tokens=300_000), "claude-sonnet-4-5").total_price
    assert whole == Decimal("1.8")


def test_one_hour_cache_write_is_twice_input_for_anthropic_without_a_price() -> None:
    rates = Rates.fill(
        input=Decimal(3), output=Decimal(15), cache_write=Decimal("3.75"), anthropic=True
    )
    assert rates.cache_write_1h == Decimal(6)
    other = Rates.fill(input=Decimal(3), output=Decimal(15), cache_write=Decimal("3.75"))
    assert other.cache_write_1h == Decimal("3.75")


def test_tool_hint_falls_back_to_the_name_alone() -> None:
    # a Claude model behind the codex tool (a gateway, say) is still priced
    assert PriceBook().price(
        "claude-haiku-4-5", Usage(input_tokens=M), tool="codex"
    ).usd == Decimal(1)


def test_lookups_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.budget import pricing

    calls: list[str] = []
    real = pricing._genai_rates

    def counting(model: str, provider: str | None) -> Rates | None:
        calls.append(model)
        return real(model, provider)

    monkeypatch.setattr(pricing, "_genai_rates", counting)
    book = PriceBook()
    for _ in range(100):
        book.price("claude-haiku-4-5", Usage(input_tokens=1), tool="claude")
        book.price("unknown-thing", Usage(input_tokens=1), tool="claude")
    assert calls == ["claude-haiku-4-5", "unknown-thing"]


# mapping check: for requests under the long-context threshold, our rates must give what
# genai-prices gives when fed its own convention (input_tokens includes cache tokens)
_small = st.integers(0, 40_000)


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from(
        [
            "claude-sonnet-4-5",
            "claude-opus-5-5",
            "claude-haiku-4-5",
            "gpt-5",
            "gpt-5.5",
            "gemini-2.5-pro",
        ]
    ),
    usage=st.builds(
        Usage,
        input_tokens=_small,
        cache_read_tokens=_small,
        cache_write_5m_tokens=_small,
        cache_write_1h_tokens=_small,
        output_tokens=_small,
    ),
)
def test_agrees_with_genai_prices_below_tiers(model: str, usage: Usage) -> None:
    theirs = calc_price(
        GPUsage(
            input_tokens=usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            output_tokens=usage.output_tokens,
        ),
        model,
    ).total_price
    assert PriceBook().price(model, usage).usd == theirs


# -- what Claude Code charged vs genai-prices ---------------------------------------------


def _claude_rows() -> list[tuple[str, Usage, Decimal, str, str]]:
    rows = []
    with (DATA / "claude_pricing.tsv").open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            parts = [
                int(p) for p in row["usage(in-cachewrite-cacheread-out[-cachewrite1h])"].split("-")
            ]
            fresh, write, read, out = parts[:4]
            write_1h = parts[4] if len(parts) > 4 else 0
            usage = Usage(
                input_tokens=fresh,
                cache_write_5m_tokens=write - write_1h,  # Claude's cache-write count includes 1h
                cache_write_1h_tokens=write_1h,
                cache_read_tokens=read,
                output_tokens=out,
            )
            rows.append(
                (
                    row["model"],
                    usage,
                    Decimal(row["total_cost_usd"]),
                    row["modelUsage_key"],
                    row["costBasis"],
                )
            )
    return rows


CLAUDE_ROWS = _claude_rows()
LISTED = [r for r in CLAUDE_ROWS if r[4] == "list"]


@pytest.mark.parametrize(("requested", "usage", "charged", "key", "basis"), LISTED)
def test_genai_prices_match_claude_for_the_model_it_billed(
    requested: str, usage: Usage, charged: Decimal, key: str, basis: str
) -> None:
    # Claude prices the model it reports in modelUsage (after its legacy remap)
    assert PriceBook().price(key, usage, tool="claude") == Cost(charged, CostSource.ESTIMATED)


def test_finding_legacy_opus_name_is_remapped_by_claude_not_by_genai_prices() -> None:
    usage = Usage(input_tokens=M)
    charged = {r[0]: r[2] for r in LISTED if r[1] == usage}
    assert charged["claude-opus-4-1"] == Decimal(4)  # Claude billed opus-5-5 rates
    assert PriceBook().price("claude-opus-4-1", usage).usd == Decimal(
        15
    )  # genai-prices' 4.1 list price


@pytest.mark.parametrize(
    ("requested", "usage", "charged", "key", "basis"), [r for r in CLAUDE_ROWS if r[4] != "list"]
)
def test_claude_prices_unknown_models_we_leave_them_unpriced(
    requested: str, usage: Usage, charged: Decimal, key: str, basis: str
) -> None:
    assert charged > 0  # Claude charged the default model's rates
    assert PriceBook().price(key, usage, tool="claude") == Cost(None, CostSource.UNPRICED)


# -- price files ---------------------------------------------------------------------------


def test_price_file_overrides_and_adds_models() -> None:
    book = PriceBook.from_file(DATA / "prices.yaml")
    usage = Usage(
        input_tokens=M,
        output_tokens=M,
        cache_read_tokens=M,
        cache_write_5m_tokens=M,
        cache_write_1h_tokens=M,
    )
    assert book.price("my-model", usage).usd == Decimal("28.05")
    assert book.price("MY-MODEL", Usage(output_tokens=M)).usd == Decimal(15)
    # the override replaces genai-prices' 3/15; unlisted kinds are input, 1h write is 2x input
    assert book.price("claude-sonnet-4-5", usage).usd == Decimal("2.5") * 3 + Decimal(
        "12.5"
    ) + Decimal(5)
    # other models still come from genai-prices
    assert book.price("claude-haiku-4-5", Usage(input_tokens=M)).usd == Decimal(1)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("p.yaml", "models:\n  m: {input: 0.1, output: 0.3}\n"),
        ("p.json", '{"models": {"m": {"input": 0.1, "output": 0.3}}}'),
        ("p.toml", "[models.m]\ninput = 0.1\noutput = 0.3\n"),
        ("p.yml", "models:\n  m: {input: '0.1', output: '0.3'}\n"),
    ],
)
def test_price_file_formats_are_exact(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    rates = load_price_file(tmp_path / name)["m"]
    assert (rates.input, rates.output) == (Decimal("0.1"), Decimal("0.3"))
    assert rates.cost_of(Usage(input_tokens=3 * M)) == Decimal("0.3")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.yaml", "models: [", "not valid YAML"),
        ("p.json", "{", "not valid JSON"),
        ("p.toml", "models = ", "not valid TOML"),
        ("p.txt", "", "unknown price file type '.txt'"),
        ("p.yaml", "- 1\n", "expected a mapping with a `models` key"),
        ("p.yaml", "prices: {}\n", "unknown key 'prices'"),
        ("p.yaml", "models: {}\n", "`models` must map model names to prices"),
        ("p.yaml", "models: {m: 3}\n", "models.m: expected a mapping"),
        ("p.yaml", "models: {m: {input: 1}}\n", "models.m: `output` is missing"),
        (
            "p.yaml",
            "models: {m: {input: 1, output: 2, cache_wrte: 3}}\n",
            "models.m: unknown key 'cache_wrte'",
        ),
        ("p.yaml", "models: {m: {input: -1, output: 2}}\n", "models.m.input: expected a price"),
        ("p.yaml", "models: {m: {input: abc, output: 2}}\n", "models.m.input: expected a price"),
        ("p.yaml", "models: {m: {input: true, output: 2}}\n", "models.m.input: expected a price"),
        ("p.yaml", "models: {m: {input: .nan, output: 2}}\n", "models.m.input: expected a price"),
    ],
)
def test_bad_price_files_fail_in_one_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CorralError) as info:
        load_price_file(path)
    lines = info.value.lines()
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith(f"{path}: ")
    assert message in lines[0]


def test_missing_price_file(tmp_path: Path) -> None:
    with pytest.raises(CorralError, match="cannot read the price file"):
        PriceBook.from_file(tmp_path / "nope.yaml")
