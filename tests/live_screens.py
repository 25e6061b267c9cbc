"""A rehearsal-like run's journal, as the review's screens showed it, for the live view's
whole-screen tests (test_live_layout.py)."""

from __future__ import annotations

from decimal import Decimal

from corral.events.types import (
    AssistantText,
    JobFinished,
    JobStarted,
    JobWaiting,
    RunStarted,
    SpendUpdated,
)
from corral.journal import RunJournal
from corral.models import BudgetLimits, Cost, CostSource, JobStatus, Usage


def rehearsal_journal(*, done: bool) -> RunJournal:
    """Three agent jobs (claude, codex, gemini) under a $1 budget: `done` all succeeded,
    else the first running and the others waiting."""
    journal = RunJournal(["analyze", "tests", "summary"], budget=BudgetLimits(usd=Decimal(1)))
    journal(RunStarted(run_id="r1", flow_name="rehearsal", flow_path="/f.yaml",
                       jobs=("analyze", "tests", "summary"), started_at=100.0))  # fmt: skip
    for name, tool in (("analyze", "claude"), ("tests", "codex"), ("summary", "gemini")):
        journal.job(name).tool = tool
    journal(JobWaiting(job="tests", reason="waiting for analyze"))
    journal(JobWaiting(job="summary", reason="waiting for tests"))
    figures = {
        "analyze": ("claude-sonnet-4-5", Usage(input_tokens=2400, output_tokens=600,
                    cache_read_tokens=36000, cache_write_5m_tokens=1000, tool_calls=1),
                    Cost(Decimal("0.0307"), CostSource.REPORTED), "Two risks found.", 2.8),
        "tests": ("gpt-5.5", Usage(input_tokens=12, output_tokens=11),
                  Cost(Decimal("0.0004"), CostSource.ESTIMATED), "Added 3 tests.", 1.6),
        "summary": ("gemini-2.5-pro", Usage(input_tokens=12, output_tokens=11),
                    Cost(Decimal("0.0001"), CostSource.ESTIMATED), "All good.", 5.2),
    }  # fmt: skip
    run_usage, run_cost = Usage(), Cost(Decimal(0), CostSource.REPORTED)
    for name, (model, usage, cost, said, seconds) in figures.items():
        tool = journal.job(name).tool
        journal(JobStarted(job=name, attempt=1, pid=1, argv=(tool,), log_dir="/l",
                           started_at=100.0, tool=tool, model=model))  # fmt: skip
        if not done:
            break
        journal(AssistantText(job=name, attempt=1, text=said))
        run_usage, run_cost = run_usage + usage, run_cost + cost
        journal(SpendUpdated(job=name, attempt=1, by_model={model: usage}, cost=cost,
                             job_usage=usage, job_cost=cost, run_usage=run_usage,
                             run_cost=run_cost))  # fmt: skip
        journal(JobFinished(job=name, attempt=1, status=JobStatus.SUCCEEDED, exit_code=0,
                            signal=None, duration_s=seconds, tool=tool))  # fmt: skip
    return journal
