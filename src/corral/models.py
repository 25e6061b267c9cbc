"""Domain values shared by every layer: job states, error kinds, token usage and cost."""

from __future__ import annotations

import enum
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
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


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
    CANCELLED = "cancelled"
    BUDGET = "budget"


class CostSource(enum.StrEnum):
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
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

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
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        return cls(**{f.name: int(data.get(f.name, 0) or 0) for f in fields(cls)})


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
        return {"usd": None if self.usd is None else str(self.usd), "source": str(self.source)}
