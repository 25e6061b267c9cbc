"""RateLimitGate with injected clocks: reset hints, backoff, resuming, reset on success."""

from __future__ import annotations

import time

import pytest

from corral.budget.ratelimit import MAX_BACKOFF_S, RateLimitGate
from corral.events.types import JobFinished, JobStarted, RateLimited
from corral.models import ErrorKind, JobStatus

WALL0 = 1_750_000_000.0  # wall-clock epoch at monotonic 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now


def _gate() -> tuple[RateLimitGate, Clock]:
    clock = Clock()
    gate = RateLimitGate(clock=clock, wall=clock.wall)
    for job, tool in (("a", "claude"), ("b", "claude"), ("c", "codex")):
        gate(JobStarted(job=job, attempt=1, pid=1, argv=(), log_dir="", started_at=0, tool=tool))
    return gate, clock


def _finished(job: str, status: JobStatus, kind: ErrorKind | None = None) -> JobFinished:
    return JobFinished(
        job=job, attempt=1, status=status, exit_code=1, signal=None, duration_s=1, error_kind=kind
    )


def test_reset_at_blocks_the_tool_until_then_and_resumes_by_itself() -> None:
    gate, clock = _gate()
    gate(RateLimited(job="a", attempt=1, status=429, reset_at=WALL0 + 130))
    assert gate.blocked_until("claude") == 130
    assert gate.blocked_until("codex") is None
    resume = time.strftime("%H:%M:%S", time.localtime(WALL0 + 130))
    assert gate.reason("claude") == f"rate limited until {resume} (claude)"
    assert gate.wake_at() == 130
    clock.now = 130
    assert gate.blocked_until("claude") is None and gate.reason("claude") is None
    assert gate.wake_at() is None


def test_retry_after_is_honoured() -> None:
    gate, clock = _gate()
    clock.now = 10
    gate(RateLimited(job="c", attempt=1, retry_after_s=45))
    assert gate.blocked_until("codex") == 55


@pytest.mark.parametrize(
    ("episodes", "expected_delay"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600), (9, 600)],
)
def test_backoff_doubles_per_episode_up_to_ten_minutes(
    episodes: int, expected_delay: float
) -> None:
    gate, clock = _gate()
    for _ in range(episodes):
        until = gate.blocked_until("claude") or clock.now
        clock.now = until  # the last block just ended: a new episode
        gate(_finished("a", JobStatus.FAILED, ErrorKind.RATE_LIMIT))
    assert gate.blocked_until("claude") == clock.now + expected_delay
    assert expected_delay <= MAX_BACKOFF_S


def test_reports_during_a_block_extend_it_without_doubling() -> None:
    gate, clock = _gate()
    for t in (0, 5, 10, 20):  # a CLI retrying by itself reports each retry
        clock.now = t
        gate(RateLimited(job="a", attempt=1, retrying=True))
    assert gate.blocked_until("claude") == 50  # 20 + 30, not 30 * 2**3


def test_success_resets_the_backoff_but_not_the_current_block() -> None:
    gate, clock = _gate()
    gate(_finished("a", JobStatus.FAILED, ErrorKind.RATE_LIMIT))
    clock.now = 30
    gate(_finished("b", JobStatus.FAILED, ErrorKind.RATE_LIMIT))
    assert gate.blocked_until("claude") == 90  # second episode: 60 s
    gate(_finished("a", JobStatus.SUCCEEDED))
    assert gate.blocked_until("claude") == 90
    clock.now = 100
    gate(_finished("b", JobStatus.FAILED, ErrorKind.RATE_LIMIT))
    assert gate.blocked_until("claude") == 130  # back to 30 s


def test_other_failures_and_unknown_jobs_do_not_block() -> None:
    gate, _ = _gate()
    gate(_finished("a", JobStatus.FAILED, ErrorKind.API))
    gate(RateLimited(job="never-started", attempt=1))
    assert gate.blocked_until("claude") is None
    # a JobFinished names its tool even if the gate missed the start
    gate(
        JobFinished(
            job="z",
            attempt=1,
            status=JobStatus.FAILED,
            exit_code=1,
            signal=None,
            duration_s=1,
            error_kind=ErrorKind.RATE_LIMIT,
            tool="gemini",
        )
    )
    assert gate.blocked_until("gemini") == 30


def test_reset_in_the_past_does_not_block() -> None:
    gate, _ = _gate()
    gate(RateLimited(job="a", attempt=1, reset_at=WALL0 - 5))
    assert gate.blocked_until("claude") is None
