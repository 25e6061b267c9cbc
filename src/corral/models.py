"""Domain values shared by every layer: job states, error kinds, budgets, token usage
and cost, and the one spelling of the token counts the history keeps."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any


class JobStatus(enum.StrEnum):
    """Where a job is. The last five are final and appear in summaries."""

    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def is_failure(self) -> bool:
        return self in (JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED)


_FINAL = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.TIMED_OUT,
        JobStatus.CANCELLED,
        JobStatus.SKIPPED,
    }
)


class RunStatus(enum.StrEnum):
    """Where a run is: running until its last job is final, then how it ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUSED = "refused"  # a policy denied the flow: nothing ran
    # a budget held back work (`on_exceed: stop`) or killed it (`kill`): not a success
    STOPPED = "stopped"


class ErrorKind(enum.StrEnum):
    """Why a job failed, as far as corral can tell; drives retries and reports."""

    RATE_LIMIT = "rate_limit"
    AUTH = "auth"
    API = "api"
    MAX_TURNS = "max_turns"
    MAX_BUDGET = "max_budget"
    TIMEOUT = "timeout"
    IDLE = "idle"
    PERMISSION = "permission"
    EXIT = "exit"
    SPAWN = "spawn"
    TEMPLATE = "template"  # a template of the job failed to render (any error it raised)
    INPUT = "input"  # its argv, env or cwd hold what no process can take (a NUL byte)
    CANCELLED = "cancelled"
    BUDGET = "budget"


class CostSource(enum.StrEnum):
    """Where a cost figure came from; the worst source of a sum wins."""

    REPORTED = "reported"  # the CLI computed it (Claude's total_cost_usd)
    ESTIMATED = "estimated"  # corral priced the tokens with genai-prices or a price file
    UNPRICED = "unpriced"  # no price known for at least one model: never shown as $0


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens and activity of one or more model calls.

    `input_tokens` never includes cached tokens: cache reads and writes are separate
    fields (Anthropic's convention; parsers of CLIs that fold them in subtract them).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    tool_calls: int = 0
    turns: int = 0

    def __add__(self, other: Usage) -> Usage:
        # the field names once (`_USAGE_NAMES`), not `fields()` at every sum: once per
        # live usage event of an agent, several times (the ledger's, the journal's folds)
        return Usage(*(getattr(self, n) + getattr(other, n) for n in _USAGE_NAMES))

    @classmethod
    def sum(cls, values: Iterable[Usage]) -> Usage:
        """The total of several usages (a job's models, a run's jobs); Usage() when none."""
        total = cls()
        for usage in values:
            total = total + usage
        return total

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def budget_tokens(self) -> int:
        """Tokens that count against a token budget: fresh input, cache writes and output.

        Cache reads are left out on purpose: a long session re-reads its whole context
        every turn, and counting that made two one-word prompts exhaust a 50k budget in
        the reference tool. Reasoning tokens are part of output for every CLI we read.
        """
        return self.input_tokens + self.cache_write_tokens + self.output_tokens

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.output_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in _USAGE_NAMES}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls(**{f.name: int(data.get(f.name, 0) or 0) for f in fields(cls)})

    def to_json(self) -> dict[str, int]:
        """The form the `--json` summary prints: every field, plus the cache-write total."""
        data = self.to_dict()
        return {
            "input_tokens": data["input_tokens"],
            "output_tokens": data["output_tokens"],
            "cache_read_tokens": data["cache_read_tokens"],
            "cache_write_tokens": self.cache_write_tokens,
            **{k: v for k, v in data.items() if k not in _JSON_FIRST},
        }


_USAGE_NAMES = tuple(f.name for f in fields(Usage))  # in order: Usage(*values) takes them


_JSON_FIRST = frozenset({"input_tokens", "output_tokens", "cache_read_tokens"})


@dataclass(frozen=True, slots=True)
class Cost:
    """Money spent.

    With source UNPRICED some tokens had no price: `usd` is then the priced part only
    (or None when nothing was priced), and the renderers say "unpriced", never "$0".
    """

    usd: Decimal | None
    source: CostSource

    @classmethod
    def zero(cls) -> Cost:
        return cls(Decimal(0), CostSource.REPORTED)

    def __add__(self, other: Cost) -> Cost:
        if self.usd is None or other.usd is None:
            known = (self.usd or Decimal(0)) + (other.usd or Decimal(0))
            return Cost(known if known else None, CostSource.UNPRICED)
        order = [CostSource.REPORTED, CostSource.ESTIMATED, CostSource.UNPRICED]
        source = max(self.source, other.source, key=order.index)
        return Cost(self.usd + other.usd, source)

    @property
    def known_usd(self) -> Decimal:
        """The priced part, for budgets (an unpriced model cannot be charged)."""
        return self.usd if self.usd is not None else Decimal(0)

    def to_dict(self) -> dict[str, str | None]:
        return {"usd": money_json(self.usd), "source": str(self.source)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cost:
        usd = data.get("usd")
        return cls(None if usd is None else Decimal(usd), CostSource(data["source"]))

    @staticmethod
    def total(costs: Iterable[Cost | None]) -> Cost | None:
        """Add costs with `+`'s rules (the worst source wins); None when there are none."""
        total: Cost | None = None
        for cost in costs:
            if cost is not None:
                total = cost if total is None else total + cost
        return total


def money_json(usd: Decimal | None) -> str | None:
    """Dollars in every JSON document corral writes: exact decimal text, or null."""
    return None if usd is None else str(usd)


def plain_decimal(amount: Decimal) -> Decimal:
    """`amount` without the trailing zeros a sum leaves (0.0924280 is 0.092428), never in
    exponent form: money as the CLI or the price list wrote it."""
    return Decimal(decimal_text(amount))


def decimal_text(amount: Decimal | int) -> str:
    """6.000000 as 6, 0.092428 as is; never in exponent form (for messages)."""
    if isinstance(amount, int):
        return str(amount)
    return format(amount.normalize(), "f")


def money_text(usd: Decimal) -> str:
    """`$1.25`, `$0.0042`, `$0`: dollars for people (JSON keeps the exact decimal)."""
    if usd == 0:
        return "$0"
    if abs(usd) < Decimal("0.01"):
        return f"${usd:.4f}"
    return f"${usd:.2f}"


def amount_text(unit: BudgetUnit, amount: Decimal | int) -> str:
    """`$0.60` or `120,000 tokens`: an amount of a budget's unit, for messages."""
    if unit is BudgetUnit.USD:
        return money_text(Decimal(amount))
    return f"{int(amount):,} tokens"


# -- budgets ---------------------------------------------------------------------------------


class BudgetScope(enum.StrEnum):
    """Whose budget: the whole run's, or one job's."""

    RUN = "run"
    JOB = "job"


class BudgetAction(enum.StrEnum):
    """What corral does when a budget is reached (a flow's `on_exceed`)."""

    WARN = "warn"  # report only
    STOP = "stop"  # start nothing more (for a job: no further attempt)
    KILL = "kill"  # as stop, and stop the running jobs that breach


class BudgetUnit(enum.StrEnum):
    """What a budget limits: dollars or budget tokens (see `Usage.budget_tokens`)."""

    USD = "usd"
    TOKENS = "tokens"


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """A run's or a job's budget as the core uses it (a flow's `budget:`, validated)."""

    usd: Decimal | None = None
    tokens: int | None = None
    on_exceed: BudgetAction = BudgetAction.STOP


# -- the token counts the history keeps ------------------------------------------------------

# (field of `Tokens` and key in the history's JSON, column in the history's tables and
# CSV exports): the one spelling of the six counts stored per attempt and per model
TOKEN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
    ("tool_calls", "tool_calls"),
)
TOKEN_FIELDS: tuple[str, ...] = tuple(name for name, _ in TOKEN_COLUMNS)
TOKEN_COLUMN_NAMES: tuple[str, ...] = tuple(column for _, column in TOKEN_COLUMNS)


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token totals as the history keeps them: cache writes are one count (5m and 1h)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    tool_calls: int = 0

    @property
    def total(self) -> int:
        """Every token that went through a model (reasoning is part of output)."""
        return self.input + self.output + self.cache_read + self.cache_write

    def __add__(self, other: Tokens) -> Tokens:
        # spelt out: `corral show` adds these for every job of a run (dataclasses.fields
        # costs more than the additions)
        return Tokens(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
            self.reasoning + other.reasoning,
            self.tool_calls + other.tool_calls,
        )

    @classmethod
    def from_usage(cls, usage: Usage) -> Tokens:
        # every column is a Usage attribute of the same name (cache_write_tokens a sum)
        return cls(*(getattr(usage, column) for column in TOKEN_COLUMN_NAMES))

    def to_usage(self) -> Usage:
        """Back to a Usage; stored cache writes are one count, so they come back as 5m."""
        values = self.columns()
        values["cache_write_5m_tokens"] = values.pop("cache_write_tokens")
        return Usage(**values)

    @classmethod
    def from_columns(cls, row: Mapping[str, Any]) -> Tokens:
        """From a row keyed by column name (None reads as 0)."""
        return cls(*[int(row[column] or 0) for column in TOKEN_COLUMN_NAMES])

    def columns(self) -> dict[str, int]:
        """Keyed by column name, for the history's tables and CSV."""
        return {column: getattr(self, name) for name, column in TOKEN_COLUMNS}

    def to_dict(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
            "reasoning": self.reasoning,
            "tool_calls": self.tool_calls,
        }
