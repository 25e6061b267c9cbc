"""The fast paths keep their promises: commands import only what they need, a current
history opens without Alembic, big runs draw in bounded rows and `show` prints plain
columns laid out as rich would. (Speed itself is measured by `make bench`, never here.)"""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from tests.test_render import finished, started

from corral.collector import collector_paused
from corral.events.types import JobStarted
from corral.journal import RunJournal
from corral.models import JobStatus
from corral.render.columns import lines, print_columns
from corral.render.fit import Trimmed
from corral.render.live import LiveView, hidden_line, visible_rows
from helpers import probe_json

# runs `corral ARGS` in a fresh interpreter and prints which of these it imported
_PROBE = textwrap.dedent(
    """
    import json, sys
    from corral.cli.main import main
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    watched = {watched!r}
    print(json.dumps(sorted(m for m in watched if m in sys.modules)), file=sys.stderr)
    """
)
_WATCHED = [
    "alembic",
    "sqlalchemy",
    "pydantic",
    "jinja2",
    "yaml",
    "tomllib",
    "rich",
    "asyncio",
    "corral.config.schema",  # the flow schema (pydantic models)
    "corral.events.types",  # the run's events (~40 dataclasses)
    "corral.expressions",  # conditions and templates
    "corral.expressions.parser",  # their parser: only a flow with an expression loads it
    "corral.expressions.values",
    "corral.plan",
    "corral.policy.engine",  # Rego policies
    "corral.store.writer",
    "corral.render.live",
]
# what running a flow needs and reading the history does not
_RUN_MACHINERY = {
    "alembic",
    "sqlalchemy",
    "pydantic",
    "jinja2",
    "yaml",
    "asyncio",
    "corral.config.schema",
    "corral.events.types",
    "corral.expressions",
    "corral.plan",
    "corral.policy.engine",
    "corral.store.writer",
    "corral.render.live",
}


def imported(
    cwd: Path, *args: str, env: dict[str, str] | None = None, watched: Iterable[str] = _WATCHED
) -> set[str]:
    code = _PROBE.format(watched=sorted(watched))
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_engine(tmp_path: Path) -> None:
    assert imported(tmp_path, "--help") == set()


def test_exec_imports_only_what_running_one_command_needs(tmp_path: Path) -> None:
    # no flow file to read (YAML, TOML), no template (Jinja2), no history (SQLAlchemy)
    # nor, with no policy to apply, the policy engine; -q draws no live view
    found = imported(tmp_path, "exec", "-q", "--no-store", "--", "true")
    # nor pydantic: what `exec` builds is validated without the flow schema
    unneeded = {"alembic", "sqlalchemy", "jinja2", "yaml", "tomllib", "corral.policy.engine"}
    unneeded |= {"pydantic", "corral.config.schema"}
    assert found.isdisjoint(unneeded | {"corral.render.live"}), found
    assert "asyncio" in found  # it did run


# what recording one plain command does not use: each was imported by `exec` once
_EXEC_UNUSED = {
    # the history's reads and their rows (`runs`, `show`, resume), `--from`'s earlier
    # results (with shutil and the bz2 and lzma it loads), a job's lookup on PATH (the
    # supervisor's), the supervisor's own module
    "corral.app.history",
    "corral.store.queries",
    "corral.store.records",
    "shutil",
    "bz2",
    "lzma",
    "corral.execute.supervisor",
    # the cache of genai-prices' rates: no model priced here
    "corral.budget.ratecache",
    # a retry's jitter (random); a run id's random bits are os.urandom's, without the
    # secrets module (random, hmac, base64)
    "random",
    "secrets",
    "hmac",
    "base64",
    # the plan's matrices, `outputs:`, templates' quoting and `corral plan`'s drawings
    "corral.plan.matrix",
    "corral.plan.quoting",
    "corral.plan.outputs",
    "corral.plan.show",
}


def test_exec_leaves_out_what_one_plain_command_does_not_use(tmp_path: Path) -> None:
    watched = {*_EXEC_UNUSED, "corral.plan", "corral.store.writer", "asyncio"}
    imported(tmp_path, "exec", "-q", "--", "true")  # creates the history (Alembic: shutil)
    for args in (["--no-store"], []):  # the history found current
        found = imported(tmp_path, "exec", "-q", *args, "--", "true", watched=watched)
        assert found.isdisjoint(_EXEC_UNUSED), (args, found & _EXEC_UNUSED)
        assert {"corral.plan", "asyncio"} <= found  # it did plan and run
    assert "corral.store.writer" in found  # and record, the last time
    # a plain flow file run likewise (its schema, pydantic, brings random and secrets)
    (tmp_path / "plain.yaml").write_text(
        "jobs:\n  a: {run: [echo, hi]}\n  b: {run: 'echo there', needs: [a]}\n"
    )
    found = imported(tmp_path, "run", "-q", "plain.yaml", watched=watched)
    pydantics = {"random", "secrets", "hmac", "base64"}
    assert found.isdisjoint(_EXEC_UNUSED - pydantics), found & _EXEC_UNUSED
    assert {"corral.plan", "asyncio", "corral.store.writer"} <= found
    # a flow that uses them loads them
    (tmp_path / "flow.yaml").write_text(
        "jobs:\n  a: {run: [echo, hi], matrix: {x: [1, 2]}, outputs: {o: {regex: hi}}}\n"
    )
    found = imported(tmp_path, "run", "-q", "flow.yaml", "--only", "a-1", watched=watched)
    assert {"corral.plan.matrix", "corral.plan.outputs"} <= found


def test_a_current_history_opens_without_the_migration_machinery(tmp_path: Path) -> None:
    # the first run creates the history (Alembic builds the schema)...
    assert "alembic" in imported(tmp_path, "exec", "-q", "--", "true")
    assert (tmp_path / ".corral" / "corral.db").exists()
    # ...later ones find it current with one query, and record the run through the
    # standard library's sqlite3: neither Alembic nor SQLAlchemy is imported
    found = imported(tmp_path, "exec", "-q", "--", "true")
    assert found.isdisjoint({"alembic", "sqlalchemy"}), found
    run_id = json.loads(
        subprocess.run(
            [sys.executable, "-m", "corral", "runs", "--json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )["runs"][0]["id"]
    for command in (["runs"], ["show", run_id], ["show", run_id, "--json"]):
        found = imported(tmp_path, *command)
        assert found.isdisjoint({"alembic", "sqlalchemy", "pydantic"}), (command, found)
    # listing runs loads nothing of what running them needs, and draws nothing with --json
    # to a pipe it prints text as rich would, without rich; on a terminal rich draws it
    found = imported(tmp_path, "runs")
    assert found.isdisjoint(_RUN_MACHINERY | {"rich"}), found
    found = imported(tmp_path, "runs", env={"FORCE_COLOR": "1"})
    assert found.isdisjoint(_RUN_MACHINERY), found
    assert "rich" in found  # the probe saw the table being drawn
    assert imported(tmp_path, "runs", "--json").isdisjoint(_RUN_MACHINERY | {"rich"})


def test_a_flow_without_templates_never_loads_jinja(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text("jobs:\n  a: {run: [echo, hi]}\n")
    (tmp_path / "tpl.yaml").write_text("jobs:\n  a: {run: [echo, '{{ run.id }}']}\n")
    assert "jinja2" not in imported(tmp_path, "validate", "flow.yaml")
    assert "jinja2" in imported(tmp_path, "validate", "tpl.yaml")


def test_a_command_without_expressions_never_loads_the_expression_parser(tmp_path: Path) -> None:
    parser = {"corral.expressions.parser", "corral.expressions.values"}
    found = imported(tmp_path, "exec", "-q", "--no-store", "--", "true")
    assert found.isdisjoint(parser), found
    assert "corral.expressions" in found  # the plan still knows its error classes
    (tmp_path / "plain.yaml").write_text("jobs:\n  a: {run: [echo, hi]}\n")
    (tmp_path / "if.yaml").write_text("jobs:\n  a: {run: [echo, hi], if: always()}\n")
    (tmp_path / "expr.yaml").write_text("jobs:\n  a: {run: [echo, '${{ run.id }}']}\n")
    assert imported(tmp_path, "validate", "plain.yaml").isdisjoint(parser)
    assert "corral.expressions.parser" in imported(tmp_path, "validate", "if.yaml")
    assert "corral.expressions.parser" in imported(tmp_path, "validate", "expr.yaml")


# runs `corral ARGS` in a fresh interpreter and prints the name of every thread started
_THREADS_PROBE = textwrap.dedent(
    """
    import json, sys, threading
    started = []
    start = threading.Thread.start
    def recording(self):
        started.append(self.name)
        start(self)
    threading.Thread.start = recording
    from corral.cli.main import main
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    print(json.dumps(started), file=sys.stderr)
    """
)


def threads_started(cwd: Path, *args: str) -> list[str]:
    return list(probe_json(cwd, _THREADS_PROBE, *args))


def test_exec_starts_no_thread_pool_only_the_history_writer(tmp_path: Path) -> None:
    # the run's end waits for the supervisor on its pidfd, sweeps orphans on the event
    # loop and closes the history on the writer's own thread: asyncio's default executor
    # (asyncio_N workers, then a thread to shut it down) is never created
    for _ in range(2):  # the first run creates the history, the second finds it
        assert threads_started(tmp_path, "exec", "-q", "--", "true") == ["corral-store-writer"]
    assert threads_started(tmp_path, "exec", "-q", "--no-store", "--", "true") == []


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_paused_restores_the_collector(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_exec_builds_its_run_with_the_collector_paused_then_frozen(tmp_path: Path) -> None:
    # what exec imports and builds before its run lives to the end: built with the
    # collector paused, then frozen out of its sight; the collector is on for the run
    code = textwrap.dedent(
        """
        import gc, json, sys
        from corral.cli.main import main
        try:
            main(["exec", "-q", "--no-store", "--", "true"])
        except SystemExit as done:
            code = done.code
        print(json.dumps([code, gc.isenabled(), gc.get_freeze_count()]), file=sys.stderr)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    exit_code, enabled, frozen = json.loads(done.stderr.strip().splitlines()[-1])
    assert (exit_code, enabled) == (0, True)
    assert frozen > 20_000  # the modules, the flow and the plan: out of the collector's sight


def _rich(headers: list[str], rows: list[list[str]], right: frozenset[int]) -> str:
    table = Table(box=None, header_style="bold")
    for i, name in enumerate(headers):
        table.add_column(name, justify="right" if i in right else "left")
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    # as printed: without the blanks rich pads the last column with (corral.render.fit)
    Console(file=buffer, width=400, color_system=None, highlight=False).print(Trimmed(table))
    return buffer.getvalue()


def test_plain_columns_are_laid_out_as_rich_lays_out_its_table() -> None:
    headers = ["JOB", "STATUS", "TOKENS", "NOTE"]
    rows = [
        ["build", "succeeded", "1.2k", ""],
        ["revue-é", "failed", "12", "exit: exit status 2"],
        ["日本", "skipped", "-", "needs build"],
    ]
    right = frozenset({2})
    assert "\n".join(lines(headers, rows, right)) + "\n" == _rich(headers, rows, right)


def test_plain_columns_print_text_as_text_one_line_per_row() -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, width=80, color_system=None)
    rows = [["a", "failed", "exit: [bold]boom[/] :smile:\nsecond\x07 line"], ["b", "ok", ""]]
    print_columns(out, ["JOB", "STATUS", "NOTE"], rows)
    text = buffer.getvalue().splitlines()
    assert len(text) == 3  # header + one line per row, wider than the console or not
    assert "exit: [bold]boom[/] :smile: second\\x07 line" in text[1]  # no markup, no bell


def _journal(jobs: int, running: int, failed: int) -> RunJournal:
    names = [f"j{i}" for i in range(jobs)]
    journal = RunJournal(names)
    for name in names[:failed]:
        journal(started(name))
        journal(finished(name, JobStatus.FAILED, 1))
    for name in names[failed : jobs - running]:
        journal(started(name))
        journal(finished(name))
    for i, name in enumerate(names[jobs - running :]):
        journal(
            JobStarted(job=name, attempt=1, pid=1, argv=("x",), log_dir="/l", started_at=float(i))
        )
    return journal


def test_a_big_run_draws_what_fits_and_summarises_the_rest() -> None:
    journal = _journal(5000, running=8, failed=3)
    console = Console(file=io.StringIO(), width=120, height=30, record=True, color_system=None)
    view = LiveView(journal, console, title="big", clock=lambda: 10.0)
    console.print(view.render())
    text = console.export_text().splitlines()
    assert len(text) <= 30  # never more than the terminal holds, whatever the run's size
    drawn = [line.split()[0] for line in text[1:] if line.startswith("j") and line[1].isdigit()]
    # every running job and every failure is on screen, in flow order
    assert drawn[:3] == ["j0", "j1", "j2"] and [f"j{i}" for i in range(4992, 5000)] == drawn[-8:]
    assert text[-1].startswith("… ") and "more jobs:" in text[-1]
    hidden = 5000 - len(drawn)
    assert f"… {hidden:,} more jobs: {hidden:,} succeeded" == text[-1].strip()
    assert "0/5000" not in text[0] and "4992/5000 done · 8 running · 3 failed" in text[0]


def test_hidden_rows_are_counted_by_status() -> None:
    journal = _journal(40, running=2, failed=1)
    shown, hidden = visible_rows(journal.jobs.values(), room=5)
    assert len(shown) == 4 and [r.name for r in shown][-2:] == ["j38", "j39"]
    assert hidden == {JobStatus.SUCCEEDED: 36}
    assert hidden_line(hidden) == "… 36 more jobs: 36 succeeded"
    # a run that fits is drawn whole, in flow order
    shown, hidden = visible_rows(journal.jobs.values(), room=40)
    assert [r.name for r in shown] == [f"j{i}" for i in range(40)] and hidden == {}


def test_runs_prints_the_table_rich_would() -> None:
    from decimal import Decimal

    from corral.models import Cost, CostSource, RunStatus, Tokens
    from corral.render.columns import print_table
    from corral.render.history import runs_table
    from corral.store.records import RunRow

    def run(i: int, status: RunStatus, cost: Cost | None) -> RunRow:
        return RunRow(
            id=f"2026120{i}-run", flow_name="réview" if i else "nightly", flow_path="f.yaml",
            status=status, started_at=1_800_000_000.0 + i, ended_at=None if i else 1.8e9 + 90,
            log_root="", resumed_from=None, user="", host="", error=None,
            tokens=Tokens(input=1234 * i), cost=cost, jobs_total=3, jobs_succeeded=2,
            jobs_failed=i % 2, jobs_skipped=0,
        )  # fmt: skip

    runs = [
        run(0, RunStatus.SUCCEEDED, None),
        run(1, RunStatus.FAILED, Cost(Decimal("0.5"), CostSource.REPORTED)),
        run(2, RunStatus.RUNNING, Cost(None, CostSource.UNPRICED)),
    ]
    outputs = []
    for draw in (
        lambda out: out.print(Trimmed(runs_table(runs))),
        lambda out: print_table(out, runs_table(runs)),
    ):
        buffer = io.StringIO()
        draw(Console(file=buffer, width=400, color_system=None, highlight=False))
        outputs.append(buffer.getvalue())
    assert outputs[0] == outputs[1]
    assert "réview" in outputs[1] and "0.5" in outputs[1]


def test_runs_to_a_pipe_writes_what_rich_would_print_there() -> None:
    from corral.render.columns import print_columns, write_columns

    headers = ["RUN", "FLOW", "TOKENS"]
    rows = [["r1", "réview 東京", "1.2k"], ["r2", "evil\x1b]0;x\x07 [red]y", "0"]]
    plain, drawn = io.StringIO(), io.StringIO()
    write_columns(plain, headers, rows, frozenset({2}))
    # what corral's table console does off a terminal (render.history.console)
    console = Console(file=drawn, highlight=False, soft_wrap=False, markup=False, emoji=False,
                      width=400)  # fmt: skip
    assert not console.is_terminal
    print_columns(console, headers, rows, frozenset({2}))
    assert plain.getvalue() == drawn.getvalue()
    assert "\x1b" not in plain.getvalue() and "[red]y" in plain.getvalue()


@pytest.mark.parametrize(
    ("env", "plain"),
    [
        ({}, True),
        ({"FORCE_COLOR": "1"}, False),
        ({"FORCE_COLOR": ""}, True),
        ({"TTY_COMPATIBLE": "1"}, False),
        ({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, True),
    ],
)
def test_plain_output_follows_richs_own_rule(
    env: dict[str, str], plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.render.columns import plain_stream

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = io.StringIO()  # not a terminal
    assert plain_stream(stream) is plain
    assert Console(file=stream).is_terminal is not plain


def test_a_table_of_rich_text_is_left_to_rich() -> None:
    from rich.text import Text

    from corral.render.columns import print_table

    table = Table(box=None)
    table.add_column("A")
    table.add_row(Text("styled", style="bold"))
    buffers = [io.StringIO(), io.StringIO()]
    Console(file=buffers[0], width=80, color_system=None).print(Trimmed(table))
    print_table(Console(file=buffers[1], width=80, color_system=None), table)
    assert buffers[0].getvalue() == buffers[1].getvalue()


def test_exec_to_a_pipe_prints_its_summary_without_rich(tmp_path: Path) -> None:
    # exec -q to a pipe: the summary is rich's text, written without importing rich
    assert "rich" not in imported(tmp_path, "exec", "-q", "--", "true")
    assert "rich" not in imported(tmp_path, "exec", "-q", "--", "false")
    # where rich would draw escapes (FORCE_COLOR) it draws, as before
    assert "rich" in imported(tmp_path, "exec", "-q", "--", "true", env={"FORCE_COLOR": "1"})


def _summary_journal(case: str) -> tuple[RunJournal, list[list[str]]]:
    """A varied run: commands, an agent with figures, retries, skips, errors of every
    shape (long, wide, hostile), per `case`."""
    from dataclasses import replace
    from decimal import Decimal

    from corral.events.types import JobFinished, JobSkipped, SpendUpdated
    from corral.models import Cost, CostSource, Usage

    notes = {
        "plain": "exit code 1",
        "long": "boom " * 60,
        "medium": "boom " * 12 + "東京",
        "word": "x" * 170,
        "wide": "东京 ошибка ×2 café",
        "hostile": "evil\x1b]0;pwn\x07 [red]markup[/red]\r\n\tdone",
        "tab": "a\tb",
        "markup": "[red]x[/red] [bold]y \x1b[2J\r\n:smile: ${HOME}",
        "spaces": "  lead and trail  ",
        "zwj": "👩\u200d💻 and ✔\ufe0f",
    }
    names = ["build", "review", "deploy", "lint-the-whole-repository", "wide名前"]
    if case == "big":
        names += [f"j{i}" for i in range(45)]
    journal = RunJournal(names)
    for name in names:
        journal(started(name, tool="claude" if name == "review" else "generic"))
    usage = Usage(input_tokens=1_234_567, output_tokens=3000, cache_read_tokens=18000, tool_calls=7)
    cost = Cost(Decimal("1.0421"), CostSource.REPORTED)
    if case != "commands":
        totals = {"job_usage": usage, "run_usage": usage, "job_cost": cost, "run_cost": cost}
        journal(SpendUpdated(job="review", attempt=1, by_model={"m1": usage}, cost=cost, **totals))
    note = notes.get(case, "exit code 2")
    journal(finished("build"))
    ends = [  # job, attempt, status, exit code, signal, duration, error
        ("review", 1, JobStatus.FAILED, 1, None, 61.5, note),
        ("review", 2, JobStatus.FAILED, None, 9, 3725.0, note),
        ("lint-the-whole-repository", 1, JobStatus.TIMED_OUT, None, 15, 0.05, None),
    ]
    for job, attempt, status, code, signal, took, error in ends:
        if attempt > 1:
            journal(replace(started(job, tool="claude"), attempt=attempt))
        tool = "claude" if job == "review" else "generic"
        end = {"exit_code": code, "signal": signal, "duration_s": took, "error": error}
        journal(JobFinished(job=job, attempt=attempt, status=status, tool=tool, **end))
    journal(JobSkipped(job="deploy", attempt=0, reason="needs 'review', which failed"))
    journal(finished("wide名前", JobStatus.FAILED, 3))
    for name in names[5:]:
        journal(finished(name, JobStatus.FAILED if name == "j7" else JobStatus.SUCCEEDED))
    footer = [
        [
            "run 20261203-x failed in 3.2s",
            "1.2M in",
            "3.0k out",
            "~$1.04",
            "logs: /var/tmp/a project/.corral/runs/20261203-x",
        ]
    ]
    if case == "footers":
        footer += [
            ["budget: $1.04 of $1.00", "stopped review"],
            [],
            ["", "x"],
            ["logs: /" + "very-long-folder/" * 12],
        ]
    if case == "hostile-footer":
        footer += [["logs: /tmp/a\tb\x1b[2J"]]
    return journal, footer


_SUMMARY_CASES = (
    "plain long word wide hostile tab markup spaces zwj commands big footers hostile-footer"
)


def _written_as_rich(case: str, widths: Iterable[int]) -> set[int]:
    """The widths at which `write_summary` wrote `case`'s summary; at each of them its
    text is the one `print_summary` draws on the console a quiet run gets off a terminal
    (TerminalUI's); elsewhere it wrote nothing, leaving it to rich."""
    from corral.render.summary import print_summary, write_summary
    from corral.render.ui import TerminalUI

    journal, footer = _summary_journal(case)
    written = set()
    for width in widths:
        drawn, plain = io.StringIO(), io.StringIO()
        ui = TerminalUI(mode="quiet", stream=drawn, title="")
        ui.console.width = width  # what PLAIN_WIDTH is to a run, at other widths too
        assert ui.plain and not ui.console.is_terminal
        print_summary(ui.console, journal, footer)
        if write_summary(plain, journal, footer, width):
            assert plain.getvalue() == drawn.getvalue(), width
            written.add(width)
        else:
            assert plain.getvalue() == ""  # left to rich, whole
    return written


@pytest.mark.parametrize("case", _SUMMARY_CASES.split())
def test_a_summary_to_a_pipe_is_the_text_rich_prints_there(case: str) -> None:
    from corral.render.ui import PLAIN_WIDTH

    widths = {PLAIN_WIDTH, 20, 40, 60, 80, 100, 120, 200}
    written = _written_as_rich(case, widths)
    if case in {"long", "word", "hostile", "tab", "hostile-footer"}:
        # a note rich folds to the width, a character rich cleans or expands: rich's
        assert not written
    else:  # else rich only where its table folds or cuts a cell (the narrow widths)
        assert {PLAIN_WIDTH, 200} <= written < widths, written


@pytest.mark.parametrize("case", ["medium", "commands", "big"])
def test_a_summary_at_every_width_is_rich_text_or_left_to_rich(case: str) -> None:
    written = _written_as_rich(case, range(20, 230))
    # written wherever the table holds whole (every width from 200), left to rich where
    # its table folds the note or cuts a cell: both sides of that line are covered
    assert set(range(200, 230)) <= written < set(range(20, 230))


@pytest.mark.parametrize(
    ("env", "isatty", "mode", "plain"),
    [
        ({}, False, "quiet", True),
        ({"NO_COLOR": "1"}, False, "quiet", True),
        ({"COLUMNS": "50", "TERM": "dumb"}, False, "quiet", True),  # off a tty: 160 wide
        ({"FORCE_COLOR": "1"}, False, "quiet", False),
        ({"TTY_COMPATIBLE": "1"}, False, "prefixed", False),
        ({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, False, "quiet", True),
        ({"FORCE_COLOR": "1"}, False, "live", False),
        ({"TTY_COMPATIBLE": "1"}, False, "live", True),  # live without colour: never a tty
        ({}, True, "quiet", False),
        ({"TTY_COMPATIBLE": "0"}, True, "quiet", False),  # rich measures the terminal
    ],
)
def test_a_run_view_writes_plain_text_only_where_rich_would(
    env: dict[str, str], isatty: bool, mode: str, plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.render.ui import PLAIN_WIDTH, TerminalUI

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = io.StringIO()
    monkeypatch.setattr(stream, "isatty", lambda: isatty)
    ui = TerminalUI(mode=mode, stream=stream, title="")
    assert ui.plain is plain
    if plain:  # rich agrees: no escape, and the width the summary is written at
        assert not ui.console.is_terminal and ui.console.size.width == PLAIN_WIDTH


def test_cells_are_measured_as_rich_measures_them() -> None:
    from rich.cells import cell_len

    from corral.render.columns import cell_width

    for code in range(0x3100):
        assert cell_width(chr(code)) == cell_len(chr(code)), hex(code)
    for text in ("", "ab · c", "×2 café", "东京", "👩\u200d💻", "✔\ufe0f", "a\x1bb"):
        assert cell_width(text) == cell_len(text), text


def test_plain_lines_of_parts_are_the_ones_rich_lays_out() -> None:
    from corral.render.fit import join_to_width, joined_lines

    parts = ["run 1 failed in 3.2s", "", "1.2k in", "~$0.13", "logs: /a/東京/b", "x" * 50]
    for width in range(1, 90):
        assert joined_lines(parts, width) == [t.plain for t in join_to_width(parts, width)]


def test_the_supervisor_starts_without_orjson_dataclasses_or_pathlib() -> None:
    # a run's supervisor is a second Python that starts before the first job: it imports
    # only what it needs (the standard library's json writes its lines)
    code = (
        "import sys, runpy\n"
        "sys.argv = ['supervisor']\n"
        "import corral.execute.supervisor\n"
        "heavy = ('orjson', 'dataclasses', 'inspect', 'pathlib', 'uuid', 'datetime')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize(
    "message",
    [
        {"op": "ready", "pid": 123},
        {"op": "started", "key": "job#1", "pid": 2**31 - 1},
        {"op": "failed", "key": "wïde名前#2", "message": 'not found: "a\\b"\t\x00\x1f\x7f'},
        {"e": "start", "key": "j#1", "pid": 7, "at": 1764787574.1234567},
        {"e": "exit", "key": "j#1", "pid": 7, "code": None, "signal": 9, "at": 0.1},
        {"op": "exit", "code": 0, "signal": None, "at": 1764787574.0, "recorded": True},
        {"sizes": [0, None, 2**53], "group": False, "disk_full": False, "x": -1.5},
        {"emoji": "🐄\u2028\u2029\ufeff", "nested": {"a": [1, "b", {"c": []}]}},
    ],
)
def test_the_supervisors_lines_are_the_bytes_orjson_writes(message: dict[str, object]) -> None:
    import orjson

    from corral.execute.supervisor import _line

    assert _line(message) == orjson.dumps(message) + b"\n"
    assert orjson.loads(_line(message)) == message


def test_the_supervisors_times_are_written_as_orjson_writes_them() -> None:
    # the only floats it writes are times since the epoch (`at`): never in exponent form,
    # where the two differ (Python's 1e-07, orjson's 1e-7)
    import random

    import orjson

    from corral.execute.supervisor import _line

    draw = random.Random(14)
    times = [time.time(), 0.0, 1.0, 4102444800.0] + [draw.uniform(0, 4.2e9) for _ in range(5000)]
    for at in times:
        assert _line({"at": at}) == orjson.dumps({"at": at}) + b"\n", at
