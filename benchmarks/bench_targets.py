"""Every row of issue 14's table, measured in one run side by side with its baselines.

    python benchmarks/bench_targets.py [--quick] [--rounds N] [--only ROW,...]
                                       [--no-install] [--out DIR] [--strict]
                                       [--eager-cleanup]

Rows (see benchmarks/README.md): exec, validate, runs, flat1k, claude, claude-fresh,
jsonl, live, show, flat10k (with the extra DAG-run row). Each row runs its contenders in interleaved
rounds and prints medians with their range, ratios taken per round against the baseline
of the same round, the target and a pass/MISS verdict. The peers (GNU parallel from
Debian, zen from PyPI in its own venv) are installed here unless --no-install; one that
cannot be is reported and its rows run without it. The report (Markdown) and every
sample (JSON) are written to --out (default: the cache's results/ folder).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from harness import fixtures, peers, profile
from harness.context import Context
from harness.measure import raise_fd_limit
from harness.report import RowResult, Verdict, row_markdown, summary_markdown
from harness.rows_output import claude_fresh_row, claude_row, jsonl_row
from harness.rows_read import runs_row, show_row, validate_row
from harness.rows_run import exec_row, flat_row, live_row

ROOT = Path(__file__).resolve().parent.parent
# cheap rows first, so a smoke run shows something quickly
ROWS: dict[str, Callable[[Context], list[RowResult]]] = {
    "exec": exec_row,
    "validate": validate_row,
    "runs": runs_row,
    "flat1k": lambda ctx: flat_row(ctx, ctx.size(1000, 40), 1.5, with_dag=False),
    "claude": claude_row,
    "claude-fresh": claude_fresh_row,
    "jsonl": jsonl_row,
    "live": live_row,
    "show": show_row,
    "flat10k": lambda ctx: flat_row(ctx, ctx.size(10_000, 150), 1.3, with_dag=True),
}


def corral_command() -> list[str]:
    """The console script next to this Python (what a user runs), else `python -m corral`."""
    script = Path(sys.executable).parent / "corral"
    return [str(script)] if script.exists() else [sys.executable, "-m", "corral"]


def machine() -> dict[str, str]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "src") else ""
    commit = f"{git('rev-parse', '--short', 'HEAD')} ({git('log', '-1', '--format=%s')[:70]})"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "corral": commit + dirty,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpus": f"{os.cpu_count()} × {cpu}",
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
    }


def _fs_type(path: Path) -> str:
    best, kind = "", "?"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            point, fstype = line.split()[1:3]
            if str(path).startswith(point) and len(point) > len(best):
                best, kind = point, fstype
    return kind


def failed_row(key: str, error: BaseException) -> RowResult:
    text = "".join(traceback.format_exception_only(error)).strip().replace("\n", " ")
    return RowResult(key, key, 0, [], [], {}, Verdict(False, f"the row failed: {text[:400]}"))


def _measured_src() -> Path:
    """The folder holding the `corral` package the measured commands import."""
    spec = importlib.util.find_spec("corral")
    if spec is None or not spec.submodule_search_locations:
        return ROOT / "src"
    return Path(next(iter(spec.submodule_search_locations))).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="rounds per row (default: each row's own)")
    parser.add_argument("--only", help=f"comma-separated rows among: {', '.join(ROWS)}")
    parser.add_argument("--no-install", action="store_true", help="use only peers already here")
    parser.add_argument("--out", type=Path, help="folder for report.md and results.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--profile",
        choices=profile.PROFILERS,
        help="after each row, profile each corral command once more (top costs in the report)",
    )
    parser.add_argument(
        "--eager-cleanup",
        action="store_true",
        help="delete each run's logs right after it instead of after the row (the figures "
        "before w9flat: the next round pays for ext4's search past deleted inodes)",
    )
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(ROWS)
    unknown = [name for name in chosen if name not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; rows: {', '.join(ROWS)}")

    # an installed package has its bytecode compiled (pip does it); an editable checkout
    # under PYTHONDONTWRITEBYTECODE=1 would recompile every module at every start. Compile
    # the corral that is measured: with PYTHONPATH=<another tree>/src (a "before"), that
    # tree, or its every start would pay ~0.1 s of compiling that the other side does not
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(_measured_src())], check=False)
    cache = fixtures.cache_dir()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    out = args.out or cache / "results" / (stamp + ("-quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    fd_limit = raise_fd_limit()
    print("setting up the peers...", file=sys.stderr, flush=True)
    install = not args.no_install
    found = {
        "xargs": peers.xargs(),
        "parallel": peers.gnu_parallel(install),
        "zen": peers.zen(cache, install),
    }
    project = work / "project"
    project.mkdir()
    ctx = Context(args.quick, args.rounds, work, project, corral_command(), found)
    ctx.profiler, ctx.profiles = args.profile, out
    ctx.eager_cleanup = args.eager_cleanup
    info = machine() | {
        "work folder": f"{work} ({_fs_type(work)})",
        "open files (soft limit)": str(fd_limit),
        **{p.name: p.note for p in found.values()},
    }
    rows: list[RowResult] = []
    try:
        for name in chosen:
            print(f"== {name}", file=sys.stderr, flush=True)
            try:
                rows += ROWS[name](ctx)
            except Exception as error:  # a broken row is reported; the others still run
                traceback.print_exc()
                rows.append(failed_row(name, error))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["1-min load (all samples)"] = _load_range(rows)
    report = render(info, rows, args)
    (out / "report.md").write_text(report, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(to_json(info, rows), indent=1), encoding="utf-8")
    print(report)
    print(f"report: {out / 'report.md'}; samples: {out / 'results.json'}", file=sys.stderr)
    broken = any(
        r.verdict.passed is False and r.verdict.text.startswith("the row failed") for r in rows
    )
    errors = any(s is not None and s.error for r in rows for c in r.contenders for s in c.rounds)
    missed = any(r.verdict.passed is False for r in rows)
    return 1 if broken or errors or (args.strict and missed) else 0


def _load_range(rows: list[RowResult]) -> str:
    loads = [s.load for r in rows for c in r.contenders for s in c.rounds if s is not None]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else "–"


def render(info: dict[str, str], rows: list[RowResult], args: argparse.Namespace) -> str:
    command = "python benchmarks/bench_targets.py " + " ".join(sys.argv[1:])
    lines = [
        f"### corral against its targets ({'quick smoke run' if args.quick else 'issue 14'})",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [f"- command: `{command.strip()}`", ""]
    lines += summary_markdown(rows)
    lines += [""]
    for row in rows:
        lines += row_markdown(row)
    return "\n".join(lines) + "\n"


def to_json(info: dict[str, str], rows: list[RowResult]) -> dict[str, object]:
    return {
        "machine": info,
        "rows": [
            {
                "key": r.key,
                "title": r.title,
                "rounds": r.rounds,
                "cells": r.cells,
                "derived": dict(r.derived),
                "verdict": {"passed": r.verdict.passed, "text": r.verdict.text},
                "notes": r.notes,
                "profiles": r.profiles,
                "contenders": [
                    {
                        "key": c.key,
                        "label": c.label,
                        "command": c.command,
                        "missing": c.missing,
                        "samples": [s.as_dict() if s else None for s in c.rounds],
                    }
                    for c in r.contenders
                ],
            }
            for r in rows
        ],
    }


if __name__ == "__main__":
    sys.exit(main())
