"""Retry policy: which failures are retried, how often, and how long to wait between tries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from corral.config.fields import JobFields
from corral.models import ErrorKind

if TYPE_CHECKING:
    import random

# the failures `retry_on` may name; a transient cause is worth another attempt
RETRYABLE = frozenset(
    {ErrorKind.RATE_LIMIT, ErrorKind.API, ErrorKind.TIMEOUT, ErrorKind.IDLE, ErrorKind.EXIT}
)
# retrying these would repeat the same refusal or spend money the user capped
# (a template or an input error would fail the same way again)
NEVER = frozenset(
    {
        ErrorKind.AUTH,
        ErrorKind.BUDGET,
        ErrorKind.MAX_BUDGET,
        ErrorKind.CANCELLED,
        ErrorKind.TEMPLATE,
        ErrorKind.INPUT,
    }
)
DEFAULT_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0
_MAX_EXPONENT = 60  # 2**60 seconds is already past any cap; avoids float overflow


def check_retry_on(item: str | int) -> str | None:
    """Why a `retry_on` item is invalid, or None when it is fine."""
    if isinstance(item, int):
        return None if 0 <= item <= 255 else f"exit code {item} is not in 0-255"
    if item in NEVER:
        return f"{item!r} is never retried"
    if item not in RETRYABLE:
        return f"unknown failure kind {item!r}; use {', '.join(sorted(RETRYABLE))} or an exit code"
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`retries: N` allows N attempts after the first one.

    Backoff uses *equal jitter*: before retry n the wait is drawn uniformly from
    [c/2, c] with c = min(retry_max_delay, retry_delay * 2**(n-1)). Half the delay is
    kept so a rate-limited fleet really backs off; the random half spreads the fleet.
    """

    retries: int = 0
    base_delay: float = DEFAULT_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    kinds: frozenset[ErrorKind] = RETRYABLE
    exit_codes: frozenset[int] = frozenset()

    @classmethod
    def from_spec(cls, spec: JobFields) -> RetryPolicy:
        """The policy of a job (retry_on is assumed valid: build_plan checks it)."""
        if not spec.retries:
            return _NO_RETRY  # shared: most jobs of a large flow never retry
        base = DEFAULT_DELAY if spec.retry_delay is None else spec.retry_delay
        top = DEFAULT_MAX_DELAY if spec.retry_max_delay is None else spec.retry_max_delay
        if spec.retry_on is None:
            kinds, codes = RETRYABLE, frozenset[int]()
        else:
            kinds = frozenset(
                ErrorKind(i) for i in spec.retry_on if isinstance(i, str) and i in RETRYABLE
            )
            codes = frozenset(i for i in spec.retry_on if isinstance(i, int))
        return cls(spec.retries, base, max(top, base), kinds, codes)

    def should_retry(
        self, attempt: int, error_kind: ErrorKind | None, exit_code: int | None
    ) -> bool:
        """After attempt number `attempt` (1 = the first) failed, is there another?

        A failure with no kind but a non-zero exit code counts as `exit`. An exit code
        listed in `retry_on` is retried even when `exit` is not.
        """
        if attempt > self.retries:
            return False
        kind = error_kind
        if kind is None and exit_code not in (None, 0):
            kind = ErrorKind.EXIT
        if kind is None or kind in NEVER:
            return False
        if kind is ErrorKind.EXIT and exit_code is not None and exit_code in self.exit_codes:
            return True
        return kind in self.kinds

    def ceiling(self, attempt: int) -> float:
        """The longest wait after attempt `attempt` failed."""
        exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after attempt `attempt` failed (equal jitter, see the class)."""
        top = self.ceiling(attempt)
        return top / 2 + rng.uniform(0, top / 2)


_NO_RETRY = RetryPolicy()
