"""Profiles of a row's corral commands: where the time goes, for the next optimisation.

`bench_targets.py --profile py-spy` (or `cprofile`) runs each corral contender of the
chosen rows once more, after its measured rounds, under a profiler, and prints the top
costs. py-spy samples every thread (the event loop and the history writer) at 200 Hz
and leaves idle samples out; cProfile is deterministic but sees the main thread only.
Raw files are kept next to the report (`*.pyspy.txt` collapsed stacks, `*.cprof`).
"""

from __future__ import annotations

import pstats
import shutil
import sys
from collections import Counter
from pathlib import Path

from harness.measure import Command

PROFILERS = ("py-spy", "cprofile")


def wrap(command: Command, profiler: str, out: Path) -> Command:
    """`command` under `profiler`, writing its raw profile to `out`."""
    if profiler == "py-spy":
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if spy is None:
            raise RuntimeError("py-spy is not installed: pip install py-spy")
        argv = [spy, "record", "--threads", "-r", "200", "-f", "raw", "-o", str(out), "--"]
        return Command([*argv, *command.argv], command.cwd, command.env, command.pty)
    script = command.argv[0]
    return Command(
        [sys.executable, "-m", "cProfile", "-o", str(out), script, *command.argv[1:]],
        command.cwd,
        command.env,
        command.pty,
    )


# the area a sample belongs to: the first of these found walking from the innermost frame
# outward decides (so `Path.mkdir` under the executor counts as filesystem, not executor)
AREAS = (
    ("<frozen importlib", "start-up imports"),
    ("corral/store/", "history store"),
    ("sqlalchemy/", "history store"),
    ("alembic/", "history store: migrations"),
    ("LineSpool.__init__", "filesystem: log files"),
    ("Path.mkdir", "filesystem: log folders"),
    ("execute/lines.py", "pipe to log, line splitting"),
    ("ChildProcess._readable", "pipe to log, line splitting"),
    ("ChildProcess._spawn", "spawning"),
    ("ChildProcess.start", "spawning"),
    ("ChildProcess._watch_exit", "spawning"),
    ("ChildProcess._collect", "reaping"),
    ("execute/reaper.py", "reaping"),
    ("_group_alive", "reaping"),
    ("corral/parsing/", "parsing agent output"),
    ("corral/budget/", "accounting, pricing, budgets"),
    ("genai_prices", "accounting, pricing, budgets"),
    ("rich/", "drawing (rich)"),
    ("corral/render/", "view state, summary, joblog"),
    ("corral/events/", "events and bus"),
    ("_Attempt.on_line", "per-line events"),
    ("_Attempt._forward", "per-line events"),
    ("corral/execute/executor.py", "executor bookkeeping"),
    ("corral/execute/scheduler.py", "scheduler bookkeeping"),
    ("corral/execute/prepare.py", "job preparation"),
    ("corral/session.py", "run session"),
    ("yaml/", "flow load: YAML"),
    ("pydantic", "flow load: pydantic"),
    ("corral/config/", "flow load"),
    ("corral/plan/", "planning"),
    ("graphlib", "planning"),
    ("asyncio/", "asyncio loop"),
    ("selectors.py", "asyncio loop"),
    ("threading.py", "threads: hand-offs"),
    ("click/", "command line"),
    ("corral/cli/", "command line"),
)
# a thread blocked on a lock is not using the CPU, but py-spy does not always see it idle
IDLE = ("Condition.wait (threading.py", "Event.wait (threading.py")


def _area(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, name in AREAS:
            if marker in frame:
                return name
    return "other"


def _function(frame: str) -> str:
    # py-spy frames read "name (path/to/file.py:LINE)": group by function, not by line
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarise_pyspy(raw: Path, top: int = 15) -> list[str]:
    """CPU samples of a raw py-spy file by area, then the top functions (own, inclusive)."""
    areas: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    writer = total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f and not f.startswith(("thread (", "process "))]
        if not count.isdigit() or not frames or frames[-1].startswith(IDLE):
            continue
        n = int(count)
        total += n
        writer += n if any("StoreWriter._run" in f for f in frames) else 0
        areas[_area(frames)] += n
        names = [_function(f) for f in frames]
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    if not total:
        return ["(no samples)"]
    lines = [
        f"{total} CPU samples ({total / 200:.1f} s at 200 Hz; the profiler slows the process), "
        f"{writer / total:.0%} in the history writer thread; by area:"
    ]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in areas.most_common()]
    lines.append("functions, own time:")
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines.append("functions, inclusive:")
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return lines


def summarise_cprofile(raw: Path, top: int = 15) -> list[str]:
    stats = pstats.Stats(str(raw))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    lines = [f"{total:.2f} s in the main thread; own time:"]
    for (path, line, name), (_, calls, own, _cum, _) in rows[:top]:
        lines.append(
            f"  {own / total:6.1%}  {own:7.3f} s  {calls:>9,}×  {name} ({Path(path).name}:{line})"
        )
    by_cum = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)  # type: ignore[attr-defined]
    lines.append("inclusive:")
    for (path, line, name), (_, calls, _own, cum, _) in by_cum[:top]:
        lines.append(
            f"  {cum / total:6.1%}  {cum:7.3f} s  {calls:>9,}×  {name} ({Path(path).name}:{line})"
        )
    return lines


def summarise(raw: Path, profiler: str) -> list[str]:
    if not raw.exists():
        return [f"(no profile written to {raw})"]
    return summarise_pyspy(raw) if profiler == "py-spy" else summarise_cprofile(raw)
