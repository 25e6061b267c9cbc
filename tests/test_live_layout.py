"""The live view's layout (issue 13, item 9): at 80x24 and at 160x45 the whole screen is
what it should be. Rendered screens are compared exactly; then `corral run` itself runs
under a pseudo-terminal of each size and the screen a terminal emulator (pyte) shows is
compared whole, times and ids masked."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from rich.console import Console

from corral.render.live import LiveView
from corral.render.summary import print_summary
from corral.tools.registry import get_tool
from live_screens import Terminal, rehearsal_journal


def rendered(width: int, height: int, *, done: bool) -> str:
    console = Console(file=io.StringIO(), width=width, height=height, record=True,
                      color_system=None)  # fmt: skip
    view = LiveView(rehearsal_journal(done=done), console, title="rehearsal", clock=lambda: 101.9)
    console.print(view.render())
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


RUNNING_80 = """\
rehearsal                                0/3 done · 1 running · 0 failed · 1.9s
budget                                   $0 of $1.00 (0%)
job      status   time  tool/model                cost  last output
analyze  running  1.9s  claude/claude-sonnet-4-5
tests    waiting        codex                           waiting for analyze
summary  waiting        gemini                          waiting for tests"""

DONE_80 = """\
rehearsal ━━━━━━━━━━━━━━━━━━━━━ 3/3 done · 0 running · 0 failed · 1.9s · ~$0.03
budget    ╸                     $0.03 of $1.00 (3%)
job      status     time  tool        cost  last output
analyze  succeeded  2.8s  claude     $0.03  Two risks found.
tests    succeeded  1.6s  codex   ~$0.0004  Added 3 tests.
summary  succeeded  5.2s  gemini  ~$0.0001  All good."""

DONE_160 = (Path(__file__).parent / "data" / "live" / "rehearsal_done_160x45.txt").read_text()
DONE_160 = DONE_160.rstrip("\n")  # a whole screen too wide for a source line


@pytest.mark.parametrize(
    ("size", "done", "screen"),
    [((80, 24), False, RUNNING_80), ((80, 24), True, DONE_80), ((160, 45), True, DONE_160)],
    ids=["80x24-running", "80x24-done", "160x45-done"],
)
def test_whole_rendered_screens(size: tuple[int, int], done: bool, screen: str) -> None:
    assert rendered(*size, done=done) == screen


def test_at_any_width_nothing_essential_is_cut() -> None:
    """From 60 to 200 columns: no line wraps, and the job, its status, time and cost are
    whole; what gives way are whole columns, least important first."""
    order = ["cache r/w", "tools", "in/out", "tool/model"]
    for width in range(60, 201, 5):
        screen = rendered(width, 40, done=True)
        lines = screen.splitlines()
        assert all(len(line) <= width for line in lines), width
        assert "…" not in screen, (width, screen)
        header = lines[2]
        for name in ("job", "status", "time", "cost", "last output"):
            assert name in header, (width, header)
        shown = [name in header for name in order]
        assert shown == sorted(shown), (width, header)  # dropped from the front of `order`
        assert not lines[0].rstrip().endswith("·"), width


# -- under a pseudo-terminal -----------------------------------------------------------


FLOW = """\
name: live-demo
jobs:
  fetch: {run: "sh -c 'echo fetching chunk 1 of 6; while [ ! -f go ]; do sleep 0.05; done'"}
  lint: {run: "sh -c 'echo 3 warnings >&2; exit 1'"}
  a-job-with-a-rather-long-name: {run: "echo done"}
  test: {needs: [fetch], run: "echo test_4 ... ok"}
  docs: {needs: [lint], run: "echo never"}
"""

LIVE = """\
live-demo ━━━━━━━━━━━━━━━━━━╺━━━━━━━━━━━ 3/5 done · 1 running · 1 failed · N.Ns
job                            status     time  last output
fetch                          running    N.Ns  fetching chunk 1 of 6
lint                           failed     N.Ns  exit code 1: 3 warnings
a-job-with-a-rather-long-name  succeeded  N.Ns  done
test                           waiting          waiting for fetch
docs                           skipped          skipped: needs 'lint' failed"""

SUMMARY = """\
job                            status     time  exit  note
fetch                          succeeded  N.Ns     0
lint                           failed     N.Ns     1  exit code 1: 3 warnings
a-job-with-a-rather-long-name  succeeded  N.Ns     0
test                           succeeded  N.Ns     0
docs                           skipped                skipped: needs 'lint' failed"""


def _mask(screen: str, folder: Path) -> str:
    screen = screen.replace(str(folder / ".corral" / "runs"), "LOGS")
    screen = re.sub(r"LOGS/\S+", "LOGS", screen)
    screen = re.sub(r"^run \S+ ", "run RUN ", screen, flags=re.MULTILINE)  # the run id
    screen = re.sub(r"\b\d+(\.\d+)?s\b", "N.Ns", screen)
    return "\n".join(line.rstrip() for line in screen.splitlines()).strip("\n")


@pytest.mark.parametrize(("columns", "lines"), [(80, 24), (160, 45)])
def test_live_view_under_a_pseudo_terminal(tmp_path: Path, columns: int, lines: int) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    terminal = Terminal(["run", "flow.yaml"], tmp_path, columns, lines)
    try:
        # fetch waits for a file: the frame is steady once everything else settled (on a
        # loaded machine a snapshot can fall mid-redraw: wait for the whole frame)
        terminal.wait_for(lambda text: _mask(text, tmp_path) == LIVE)
        (tmp_path / "go").touch()
        assert terminal.finish() == 1
    finally:
        terminal.stop()
    # the live frame gave way to the summary, printed once, then the run's line
    final = _mask(terminal.text(), tmp_path).splitlines()
    footer = next(i for i, line in enumerate(final) if line.startswith("run RUN failed in"))
    # at 80 columns the summary's note column folds a long note (it is never cut)
    folded = SUMMARY.replace("needs 'lint' failed", "needs 'lint'\n" + " " * 54 + "failed")
    assert "\n".join(final[:footer]) == (folded if columns == 80 else SUMMARY)
    assert final.count(final[0]) == 1  # not twice


def test_ctrl_c_leaves_no_old_frame(tmp_path: Path) -> None:  # item 15
    (tmp_path / "flow.yaml").write_text(FLOW)
    terminal = Terminal(["run", "flow.yaml"], tmp_path, 80, 24)
    try:
        terminal.wait_for(lambda text: "fetching chunk 1 of 6" in text)
        os.killpg(terminal.process.pid, signal.SIGINT)  # Ctrl-C: SIGINT to the group
        assert terminal.finish() == 130
    finally:
        terminal.stop()
    final = _mask(terminal.text(), tmp_path)
    assert "live-demo ━" not in final and "last output" not in final  # the frame is gone
    assert final.count("job ") == 1 and "interrupted by SIGINT" in final


# -- the end-of-run summary (item 9): it degrades as the live table does -----------------

AGENTS = Path(__file__).parent / "data" / "agents"
FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"

SUMMARY_FLOW = """\
name: summary-demo
jobs:
  analyze: {tool: claude, prompt: "review", env: {FAKE_AGENT_SCRIPT: claude_tool}}
  tests: {tool: codex, prompt: "tests", model: gpt-5.5, env: {FAKE_AGENT_SCRIPT: codex_tool}}
  summary: {tool: gemini, prompt: "hi", env: {FAKE_AGENT_SCRIPT: gemini_text}}
  lint: {run: "sh -c 'echo 3 warnings about the style of the code base >&2; exit 1'"}
  docs: {needs: [lint], run: "echo never"}
"""

SUMMARY_80 = """\
lint    | ✗ failed in N.Ns (exit 1): exit code 1: 3 warnings about the style of
the code base
job      status     time  exit  tool        cost  note
analyze  succeeded  N.Ns     0  claude     $0.10
tests    succeeded  N.Ns     0  codex     ~$0.03
summary  succeeded  N.Ns     0  gemini  ~$0.0018
lint     failed     N.Ns     1                    exit code 1: 3 warnings about
                                                  the style of the code base
docs     skipped                                  skipped: needs 'lint' failed
run RUN failed in N.Ns · 2.2k in · 288 out · ~$0.13
logs: LOGS"""

SUMMARY_160 = """\
lint    | ✗ failed in N.Ns (exit 1): exit code 1: 3 warnings about the style of the code base
job      status     time  exit  tool      in  out  cache r  cache w  tools      cost  note
analyze  succeeded  N.Ns     0  claude    21   78    18.4k    18.6k      1     $0.10
tests    succeeded  N.Ns     0  codex    414  136    35.7k     1.0k      1    ~$0.03
summary  succeeded  N.Ns     0  gemini  1.8k   74     8.2k        0      0  ~$0.0018
"""  # the long rows are built below (a source line holds 99 characters)
SUMMARY_160 += (
    "lint     failed     N.Ns     1"
    + " " * 56
    + "exit code 1: 3 warnings about the style of the code base\n"
    "docs     skipped" + " " * 70 + "skipped: needs 'lint' failed\n"
    "run RUN failed in N.Ns · 2.2k in · 288 out · ~$0.13\n"
    "logs: LOGS"
)


def _fake_clis(folder: Path) -> dict[str, str]:
    """One fake executable per agent CLI, each saying it is the version its adapter was
    verified with (so no version warning joins the screen), replaying a recording."""
    env = {"FAKE_AGENT_DIR": str(AGENTS)}
    for name in ("claude", "codex", "gemini"):
        verified = get_tool(name).verified
        assert verified is not None
        script = folder / f"fake-{name}"
        script.write_text(
            f'#!/bin/sh\n[ "$1" = --version ] && {{ echo {verified.version}; exit 0; }}\n'
            f'exec {sys.executable} {FAKE_AGENT} "$@"\n'
        )
        script.chmod(0o755)
        env[f"CORRAL_{name.upper()}_BIN"] = str(script)
    return env


@pytest.mark.parametrize(
    ("columns", "lines", "screen"), [(80, 24, SUMMARY_80), (160, 45, SUMMARY_160)]
)
def test_summary_under_a_pseudo_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: int, lines: int, screen: str
) -> None:
    """At 80 columns the summary drops the token, cache and tool-call columns (the live
    view's order) and folds the note; the job, status, time, exit and cost stay whole.
    The run's last line breaks only between its parts: the log path (146 characters
    here, whatever the temporary folder) goes on its own line, whole, wrapped by the
    terminal at 80 columns and not at 160."""
    folder = tmp_path / ("d" * (100 - len(str(tmp_path)) - 1))  # 100 characters
    folder.mkdir()
    (folder / "flow.yaml").write_text(SUMMARY_FLOW)
    for key, value in _fake_clis(tmp_path).items():
        monkeypatch.setenv(key, value)
    terminal = Terminal(["run", "flow.yaml", "--output", "quiet"], folder, columns, lines)
    try:
        assert terminal.finish() == 1
    finally:
        terminal.stop()
    shown, _, rest = terminal.text().partition("\nlogs: ")
    rows = [row.rstrip() for row in ("logs: " + rest).splitlines() if row.strip()]
    # the path is the last thing shown, whole: at 80 columns the terminal wrapped it (a
    # full row, then the rest), at 160 it fits its own line
    assert [len(row) for row in rows] == ([80, 72] if columns == 80 else [152])
    path = "".join(rows).removeprefix("logs: ")
    assert re.fullmatch(re.escape(str(folder / ".corral" / "runs")) + r"/[0-9a-z-]{32}", path)
    assert _mask(shown + "\nlogs: LOGS", tmp_path) == screen


def test_summary_at_any_width_keeps_the_essentials() -> None:
    """From 40 to 200 columns: the job, its status, time and cost are never cut, and the
    columns that give way go least important first."""
    journal = rehearsal_journal(done=True)
    order = ["cache r", "tools", "in", "tool", "exit"]
    for width in range(40, 201, 5):
        console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
        print_summary(console, journal, [["run r1"]])
        screen = console.export_text()
        lines = screen.splitlines()
        header = re.split(r"\s{2,}", lines[0].strip())
        assert "…" not in screen, (width, screen)
        for name in ("job", "status", "time", "cost"):
            assert name in header, (width, header)
        for row, cost in zip(lines[1:4], ("$0.03", "~$0.0004", "~$0.0001"), strict=True):
            assert row.split()[:2] + row.split()[-1:] == [row.split()[0], "succeeded", cost]
        shown = [name in header for name in order]
        assert shown == sorted(shown), (width, header)
        if width >= 110:
            assert all(name in header for name in order), width


def test_summary_leaves_a_job_that_never_started_blank() -> None:
    """A job cancelled or held back before its first attempt has no time and no figures
    (it showed `0.0s`, and an agent job `0` tokens), as `corral show` leaves them."""
    from corral.events.types import JobFinished, JobSkipped
    from corral.journal import RunJournal
    from corral.models import JobStatus

    journal = RunJournal(["held", "stopped"])
    journal.job("held").tool = "claude"
    journal(JobSkipped(job="held", reason="not started: run budget exceeded"))
    stop = "not started: interrupted by SIGINT"
    journal(JobFinished(job="stopped", attempt=0, status=JobStatus.CANCELLED, exit_code=None,
                        signal=None, duration_s=0.0, error=stop))  # fmt: skip
    console = Console(file=io.StringIO(), width=160, record=True, color_system=None)
    print_summary(console, journal, [["run r1"]])
    rows = [line.split() for line in console.export_text().splitlines()[1:3]]
    assert rows == [
        ["held", "skipped", "not", "started:", "run", "budget", "exceeded"],
        ["stopped", "cancelled", "not", "started:", "interrupted", "by", "SIGINT"],
    ]


HIDDEN_45 = """\
big ━━━━━━━            2000/5000 done · 0.0s
job    status   time  last output
j0     failed   1.0s
j1     failed   1.0s
j2     failed   1.0s
j2000  waiting
j2001  waiting
j2002  waiting
… 4,994 more jobs: 2,997 waiting
1,997 succeeded"""


def test_the_hidden_jobs_line_breaks_between_its_parts() -> None:
    """A run bigger than the screen: the line counting the hidden jobs breaks between
    two statuses on a narrow terminal (it wrapped as `1,997` / `succeeded`), and a row
    gives way for its second line, so the frame is as tall as it was."""
    from corral.events.types import JobFinished, JobStarted
    from corral.journal import RunJournal
    from corral.models import JobStatus

    names = [f"j{i}" for i in range(5000)]
    journal = RunJournal(names)
    for i, name in enumerate(names[:2000]):
        journal(JobStarted(job=name, attempt=1, pid=1, argv=("x",), log_dir="/l",
                           started_at=1.0))  # fmt: skip
        status = JobStatus.FAILED if i < 3 else JobStatus.SUCCEEDED
        journal(JobFinished(job=name, attempt=1, status=status, exit_code=int(i < 3),
                            signal=None, duration_s=1.0))  # fmt: skip
    screens = {}
    for width in (45, 80):
        console = Console(file=io.StringIO(), width=width, height=12, record=True,
                          color_system=None)  # fmt: skip
        console.print(LiveView(journal, console, title="big", clock=lambda: 10.0).render())
        screens[width] = "\n".join(line.rstrip() for line in console.export_text().splitlines())
    assert screens[45] == HIDDEN_45
    assert len(screens[80].splitlines()) == len(HIDDEN_45.splitlines())
    assert screens[80].endswith("\n… 4,993 more jobs: 2,996 waiting · 1,997 succeeded")
