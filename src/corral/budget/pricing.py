"""Token prices: a user price file first, then genai-prices; an unknown model stays unpriced."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from corral.errors import PriceFileError
from corral.models import Cost, CostSource, Usage

# The provider genai-prices should look in first for a tool's models. Qwen Code runs
# Alibaba's models, which genai-prices lists only under resellers, so it gets no hint.
TOOL_PROVIDERS: Mapping[str, str] = {
    "claude": "anthropic",
    "codex": "openai",
    "gemini": "google",
}

_MTOK = 6  # prices are per million tokens: scale by 10**-6, which is exact for Decimal
_FILE_KEYS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
_REQUIRED_KEYS = ("input", "output")


@dataclass(frozen=True, slots=True)
class Rates:
    """A model's prices in USD per million tokens, every token kind filled in."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    source: str = ""  # where the prices came from, for `corral plan` and debugging

    @classmethod
    def fill(
        cls,
        *,
        input: Decimal,
        output: Decimal,
        cache_read: Decimal | None = None,
        cache_write: Decimal | None = None,
        cache_write_1h: Decimal | None = None,
        anthropic: bool = False,
        source: str = "",
    ) -> Rates:
        """Rates with the missing kinds derived the way the provider bills them.

        A token kind without its own price is billed as plain input (that is what
        genai-prices does too). Anthropic bills a 1-hour cache write at twice the input
        price, which Claude Code confirms (NOTES §6).
        """
        write_5m = cache_write if cache_write is not None else input
        if cache_write_1h is not None:
            write_1h = cache_write_1h
        elif anthropic:
            write_1h = input * 2
        else:
            write_1h = write_5m
        return cls(
            input=input,
            output=output,
            cache_read=cache_read if cache_read is not None else input,
            cache_write_5m=write_5m,
            cache_write_1h=write_1h,
            source=source,
        )

    def cost_of(self, usage: Usage) -> Decimal:
        """Exact dollars for these tokens. Reasoning tokens are already in output."""
        per_mtok = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_5m_tokens * self.cache_write_5m
            + usage.cache_write_1h_tokens * self.cache_write_1h
        )
        return per_mtok.scaleb(-_MTOK)


class PriceBook:
    """Prices usage per model; lookups are cached because every usage event asks."""

    def __init__(
        self, overrides: Mapping[str, Rates] | None = None, *, genai_prices: bool = True
    ) -> None:
        self._overrides = {name.lower(): rates for name, rates in (overrides or {}).items()}
        self._genai_prices = genai_prices
        self._cache: dict[tuple[str, str | None], Rates | None] = {}

    @classmethod
    def from_file(cls, path: str | Path, *, genai_prices: bool = True) -> PriceBook:
        """A price book whose file prices override (or add to) genai-prices'."""
        return cls(load_price_file(path), genai_prices=genai_prices)

    def rates(self, model: str, *, tool: str | None = None) -> Rates | None:
        """The model's rates, or None when neither the price file nor genai-prices knows it."""
        key = (model, tool)
        try:
            return self._cache[key]
        except KeyError:
            pass
        rates = self._overrides.get(model.lower())
        if rates is None and self._genai_prices:
            rates = _genai_rates(model, TOOL_PROVIDERS.get(tool or ""))
        self._cache[key] = rates
        return rates

    def price(self, model: str, usage: Usage, *, tool: str | None = None) -> Cost:
        """What `usage` of `model` costs: ESTIMATED, or UNPRICED (usd None), never a made-up $0."""
        rates = self.rates(model, tool=tool)
        if rates is None:
            return Cost(None, CostSource.UNPRICED)
        return Cost(rates.cost_of(usage), CostSource.ESTIMATED)


def _genai_rates(model: str, provider_id: str | None) -> Rates | None:
    """genai-prices' rates for `model`, from the cache of its answers when it has them
    (`corral.budget.ratecache`: a run then never imports genai-prices). Loaded by the
    first model priced here: a run of commands, or of CLIs that report their cost, never
    needs it."""
    from corral.budget import ratecache

    cached = ratecache.lookup(model, provider_id)
    if not isinstance(cached, ratecache.Missing):
        return cached
    rates, timeless = _ask_genai_prices(model, provider_id)
    if timeless and ratecache.bundled_snapshot():
        ratecache.remember(model, provider_id, rates)
    return rates


def _ask_genai_prices(model: str, provider_id: str | None) -> tuple[Rates | None, bool]:
    """The rates, and whether the answer holds whatever the time (see `ratecache`)."""
    from genai_prices import Usage as GPUsage
    from genai_prices import calc_price

    from corral.budget import ratecache

    attempts: list[str | None] = [provider_id, None] if provider_id else [None]
    for provider in attempts:
        try:
            # an empty usage is enough: the answer carries the model's resolved prices
            calc = calc_price(GPUsage(), model, provider_id=provider)
        except (LookupError, ValueError):
            continue
        timeless = ratecache.timeless(calc.model)
        prices = calc.model_price
        input_price = _base(getattr(prices, "input_mtok", None))
        output_price = _base(getattr(prices, "output_mtok", None))
        if input_price is None or output_price is None:
            # priced per request or per second, not per token: not ours to guess
            return None, timeless
        write = _base(getattr(prices, "cache_write_5m_mtok", None))
        if write is None:
            write = _base(getattr(prices, "cache_write_mtok", None))
        rates = Rates.fill(
            input=input_price,
            output=output_price,
            cache_read=_base(getattr(prices, "cache_read_mtok", None)),
            cache_write=write,
            cache_write_1h=_base(getattr(prices, "cache_write_1h_mtok", None)),
            anthropic=calc.provider.id == "anthropic" or model.lower().startswith("claude"),
            source=f"genai-prices {calc.provider.id}/{calc.model.id}",
        )
        return rates, timeless
    return None, True  # no provider knows the model, whenever asked


def _base(price: object) -> Decimal | None:
    # Tiered (long-context) prices apply per request, by that request's input size. We
    # only ever see a job's summed usage, which would cross the tier after a few turns
    # and double the estimate, so the base price is the honest one.
    if price is None:
        return None
    if isinstance(price, Decimal):
        return price
    base = getattr(price, "base", None)
    return base if isinstance(base, Decimal) else None


# -- price files ---------------------------------------------------------------------------


def load_price_file(path: str | Path) -> dict[str, Rates]:
    """Read `{models: {NAME: {input, output, cache_read?, cache_write?, cache_write_1h?}}}`.

    YAML, JSON or TOML by extension; prices in USD per million tokens, kept exact.
    """
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict):
        raise _file_error(path, "expected a mapping with a `models` key")
    unknown = sorted(set(data) - {"models"})
    if unknown:
        raise _file_error(path, f"unknown key {unknown[0]!r}: only `models` is read")
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise _file_error(path, "`models` must map model names to prices")
    return {str(name): _rates_entry(path, str(name), entry) for name, entry in models.items()}


def _read(path: Path) -> Any:
    import tomllib  # only when a price file is given: a run without one never loads them

    import yaml

    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(f"{path}: cannot read the price file: {exc.strerror or exc}") from None
    try:
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if suffix == ".json":
            return json.loads(text, parse_float=Decimal)
        if suffix == ".toml":
            return tomllib.loads(text, parse_float=Decimal)
    except (yaml.YAMLError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _file_error(path, f"not valid {suffix.lstrip('.').upper()}: {first_line}") from None
    raise _file_error(
        path, f"unknown price file type {suffix or '(none)'!r}", hint="use .yaml, .json or .toml"
    )


def _rates_entry(path: Path, name: str, entry: object) -> Rates:
    where = f"models.{name}"
    if not isinstance(entry, dict):
        raise _file_error(path, f"{where}: expected a mapping such as {{input: 3, output: 15}}")
    unknown = sorted(set(map(str, entry)) - set(_FILE_KEYS))
    if unknown:
        raise _file_error(
            path, f"{where}: unknown key {unknown[0]!r}", hint=f"keys: {', '.join(_FILE_KEYS)}"
        )
    for key in _REQUIRED_KEYS:
        if key not in entry:
            raise _file_error(
                path, f"{where}: `{key}` is missing", hint="give $ per million tokens"
            )
    prices = {key: _price(path, f"{where}.{key}", value) for key, value in entry.items()}
    return Rates.fill(
        input=prices["input"],
        output=prices["output"],
        cache_read=prices.get("cache_read"),
        cache_write=prices.get("cache_write"),
        cache_write_1h=prices.get("cache_write_1h"),
        anthropic=name.lower().startswith("claude"),
        source=f"price file {path}",
    )


def _price(path: Path, where: str, value: object) -> Decimal:
    if isinstance(value, bool):
        value = None  # True would read as 1
    elif isinstance(value, float):
        value = str(value)  # YAML gives floats: their shortest repr is the number as written
    try:
        price = Decimal(value) if isinstance(value, str | int | Decimal) else None
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price < 0:
        raise _file_error(path, f"{where}: expected a price in $ per million tokens, got {value!r}")
    return price


def _file_error(path: Path, message: str, *, hint: str | None = None) -> PriceFileError:
    return PriceFileError(f"{path}: {message}", hint=hint)
