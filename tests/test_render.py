"""What the user sees: the live table, the line printer, the summary, from events alone."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console

from corral.events.types import (
    AssistantText,
    JobFinished,
    JobOutput,
    JobSkipped,
    JobStarted,
    JobWaiting,
    SpendUpdated,
    ToolCall,
)
from corral.journal import RunJournal
from corral.models import BudgetLimits, Cost, CostSource, JobStatus, Usage
from corral.render.live import LiveView
from corral.render.printer import LinePrinter
from corral.render.summary import print_summary


def started(job: str, tool: str = "generic") -> JobStarted:
    return JobStarted(
        job=job, attempt=1, pid=1, argv=("x",), log_dir="/l", started_at=0.0, tool=tool, model="m1"
    )


def finished(job: str, status: JobStatus = JobStatus.SUCCEEDED, code: int = 0) -> JobFinished:
    return JobFinished(
        job=job, attempt=1, status=status, exit_code=code, signal=None, duration_s=1.0
    )


def test_live_table_shows_status_tokens_cost_and_reasons() -> None:
    budget = BudgetLimits(usd=Decimal(1), tokens=4000)
    state = RunJournal(["build", "review", "deploy"], budget=budget)
    for event in (
        started("build"),
        JobOutput(job="build", stream="stdout", text="compiling 3 files", offset=0),
        started("review", tool="claude"),
        AssistantText(job="review", attempt=1, text="Looking at the diff"),
        ToolCall(job="review", attempt=1, name="Bash"),
        JobWaiting(job="deploy", reason="waiting for build, review"),
    ):
        state(event)
    usage = Usage(
        input_tokens=1200,
        output_tokens=300,
        cache_read_tokens=18000,
        cache_write_5m_tokens=500,
        tool_calls=1,
    )

    cost = Cost(Decimal("0.0421"), CostSource.REPORTED)
    # the ledger's figures, as the bus brings them: live cost comes from the journal
    state(
        SpendUpdated(
            job="review",
            attempt=1,
            by_model={"m1": usage},
            cost=cost,
            job_usage=usage,
            job_cost=cost,
            run_usage=usage,
            run_cost=cost,
        )
    )
    console = Console(file=io.StringIO(), width=160, record=True, color_system=None)
    view = LiveView(state, console, title="demo", clock=lambda: 0.0)
    console.print(view.render())
    text = console.export_text()
    assert "demo" in text and "0/3 done · 2 running" in text
    assert "1.2k in · 300 out · $0.04" in text  # the run's totals
    assert "$0.04 of $1.00 (4%)" in text and "2.0k of 4.0k tokens (50%)" in text
    build = next(line for line in text.splitlines() if line.startswith("build"))
    assert "running" in build and "compiling 3 files" in build
    review = next(line for line in text.splitlines() if line.startswith("review"))
    for cell in ("claude/m1", "1.2k/300", "18.0k/500", "$0.04", "⚙ Bash"):
        assert cell in review, cell
    deploy = next(line for line in text.splitlines() if line.startswith("deploy"))
    assert "waiting for build, review" in deploy


def test_prefixed_lines_are_aligned_and_agents_narrated() -> None:
    out = io.StringIO()
    printer = LinePrinter(["a", "longer"], mode="prefixed", stream=out, max_line_length=12)
    for event in (
        started("a"),
        JobOutput(job="a", stream="stdout", text="hello world, a long line", offset=0),
        started("longer", tool="claude"),
        JobOutput(job="longer", stream="stdout", text='{"type":"assistant"}', offset=0),
        AssistantText(job="longer", attempt=1, text="first\nsecond"),
        ToolCall(job="longer", attempt=1, name="Bash"),
        finished("a"),
        finished("longer", JobStatus.FAILED, 1),
        JobSkipped(job="a", reason="skipped: needs 'x' failed"),
    ):
        printer(event)
    assert out.getvalue().splitlines() == [
        "a      | ▶ started",
        "a      | hello world…",
        "longer | ▶ started",
        "longer | first",
        "longer | second",
        "longer | ⚙ Bash",
        "a      | ✓ succeeded in 1.0s (exit 0)",
        "longer | ✗ failed in 1.0s (exit 1)",
        "a      | ↷ skipped: needs 'x' failed",
    ]


def test_big_run_summary_lists_only_what_did_not_succeed() -> None:
    names = [f"j{i}" for i in range(50)]
    state = RunJournal(names)
    for name in names:
        state(started(name))
        state(
            finished(
                name,
                JobStatus.FAILED if name == "j7" else JobStatus.SUCCEEDED,
                1 if name == "j7" else 0,
            )
        )
    console = Console(file=io.StringIO(), width=120, record=True, color_system=None)
    print_summary(console, state, [["run x"]])
    text = console.export_text()
    assert "j7" in text and "j8 " not in text
    assert "50 jobs: 1 failed, 49 succeeded" in text


def test_budget_meters_count_what_budgets_count() -> None:
    from corral.render.format import budget_meters

    usage = Usage(
        input_tokens=100, output_tokens=50, cache_read_tokens=90_000, cache_write_5m_tokens=50
    )
    cost = Cost(Decimal("1.25"), CostSource.REPORTED)
    meters = budget_meters(BudgetLimits(usd=Decimal(5), tokens=1000), usage, cost)
    assert meters == [("$1.25 of $5.00", 0.25), ("200 of 1.0k tokens", 0.2)]  # cache reads left out


def test_a_line_of_parts_breaks_only_between_its_parts() -> None:
    """The run's last line and the plan's headline (corral.render.fit): at any width a
    line breaks only between two parts (never inside `~$0.13`, `3.2s` or a word), no line
    starts or ends with the separator, and a part too wide for any line (a long path)
    stands alone, whole."""
    from corral.render.fit import SEPARATOR, join_to_width

    parts = ["run 20261203-154612-4n29wr4jwzgg1z9k failed in 3.2s", "2.2k in", "288 out",
             "~$0.13", "", "logs: /tmp/" + "x" * 90]  # fmt: skip
    for width in range(10, 201):
        lines = [line.plain for line in join_to_width(parts, width)]
        assert SEPARATOR.join(lines) == SEPARATOR.join(p for p in parts if p), width
        for line in lines:
            assert not line.startswith("·") and not line.endswith("·"), (width, line)
            assert len(line) <= width or line in parts, (width, line)
            # each line is whole parts
            assert all(piece in parts for piece in line.split(SEPARATOR)), (width, line)
    assert [t.plain for t in join_to_width(parts, 80)] == [
        "run 20261203-154612-4n29wr4jwzgg1z9k failed in 3.2s · 2.2k in · 288 out · ~$0.13",
        parts[-1],
    ]


def test_a_first_separator_joins_only_the_first_two_parts() -> None:
    """A plan's job label: `name  tool  detail · detail`, broken between the details."""
    from corral.render.fit import join_to_width

    parts = ["report  run: echo done", "needs lint", "if always()"]
    assert [t.plain for t in join_to_width(parts, 80, first_separator="  ")] == [
        "report  run: echo done  needs lint · if always()"
    ]
    assert [t.plain for t in join_to_width(parts, 40, first_separator="  ")] == [
        "report  run: echo done  needs lint",
        "if always()",
    ]
    assert [t.plain for t in join_to_width(["", *parts], 30, first_separator="  ")] == [
        "report  run: echo done",
        "needs lint · if always()",
    ]
