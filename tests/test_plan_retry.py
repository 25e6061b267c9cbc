"""Retry policy: bounded attempts, never auth/budget/cancel, backoff within its bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.config.schema import JobSpec
from corral.models import ErrorKind
from corral.plan import RetryPolicy


def _policy(**fields: object) -> RetryPolicy:
    return RetryPolicy.from_spec(JobSpec.model_validate({"run": "x", **fields}))


def _attempts(policy: RetryPolicy, kind: ErrorKind | None, exit_code: int | None) -> int:
    attempt = 1
    while policy.should_retry(attempt, kind, exit_code):
        attempt += 1
        assert attempt < 1000
    return attempt


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_retries_n_means_n_more_attempts(retries: int) -> None:
    policy = _policy(retries=retries)
    assert _attempts(policy, ErrorKind.RATE_LIMIT, None) == retries + 1
    assert _attempts(policy, None, 1) == retries + 1  # no kind, non-zero exit: `exit`


@pytest.mark.parametrize(
    "kind", [ErrorKind.AUTH, ErrorKind.BUDGET, ErrorKind.MAX_BUDGET, ErrorKind.CANCELLED]
)
def test_never_retried_whatever_the_settings(kind: ErrorKind) -> None:
    assert _attempts(_policy(retries=10), kind, 1) == 1
    assert _attempts(_policy(retries=10, retry_on=["exit", 1]), kind, 1) == 1


def test_default_retry_on_is_every_transient_kind() -> None:
    policy = _policy(retries=1)
    for kind in ("rate_limit", "api", "timeout", "idle", "exit"):
        assert policy.should_retry(1, ErrorKind(kind), None)
    for kind in (ErrorKind.MAX_TURNS, ErrorKind.PERMISSION, ErrorKind.SPAWN):
        assert not policy.should_retry(1, kind, None)
    assert not policy.should_retry(1, None, 0)  # nothing failed
    assert not policy.should_retry(1, None, None)


def test_retry_on_kinds_and_exit_codes() -> None:
    policy = _policy(retries=2, retry_on=["rate_limit", 75])
    assert policy.should_retry(1, ErrorKind.RATE_LIMIT, None)
    assert policy.should_retry(2, ErrorKind.EXIT, 75)
    assert policy.should_retry(1, None, 75)
    assert not policy.should_retry(1, ErrorKind.EXIT, 1)
    assert not policy.should_retry(1, ErrorKind.API, None)
    assert not policy.should_retry(3, ErrorKind.RATE_LIMIT, None)


def test_backoff_doubles_and_is_capped() -> None:
    policy = _policy(retries=10, retry_delay="2s", retry_max_delay="10s")
    assert [policy.ceiling(a) for a in range(1, 6)] == [2, 4, 8, 10, 10]
    assert _policy().ceiling(1) == 1.0 and _policy().ceiling(100) == 60.0
    assert policy.ceiling(10_000) == 10  # no overflow


def test_equal_jitter_with_an_injected_rng() -> None:
    policy = _policy(retries=3, retry_delay=4)
    assert policy.delay(1, random.Random(7)) == policy.delay(1, random.Random(7))

    class Low(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a

    class High(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert policy.delay(2, Low()) == 4.0  # half of 8
    assert policy.delay(2, High()) == 8.0


@given(
    st.floats(0, 30),
    st.floats(0, 300),
    st.integers(1, 200),
    st.integers(0, 2**32),
)
def test_backoff_within_bounds(base: float, cap: float, attempt: int, seed: int) -> None:
    policy = RetryPolicy(retries=5, base_delay=base, max_delay=max(cap, base))
    top = policy.ceiling(attempt)
    assert top <= policy.max_delay
    assert top <= base * 2 ** (attempt - 1) + 1e-9
    delay = policy.delay(attempt, random.Random(seed))
    assert top / 2 <= delay <= top
    assert policy.ceiling(attempt) <= policy.ceiling(attempt + 1)
