"""Run benchmarks: corral against baselines measured in the same run, as ratios.

    python benchmarks/bench_run.py [--quick]

1. flat: 1,000 jobs of `true` at concurrency 8, against `xargs -P 8` (target: ≤ 1.5x).
2. memory: 100 concurrent jobs each printing 5 MB of JSON lines: corral's peak RSS
   (target: ≤ 80 MB) and every byte in the logs.
3. startup: `corral --help` against `python -c pass` (target: < 0.3 s).
4. dag: a DAG of trivial commands (3 needs per job) at concurrency 16 against the same
   number of jobs without edges: scheduler overhead per job (target: < 2 ms).
5. agents: 50 jobs replaying a long recorded Claude stream at full speed: corral's CPU
   time per MB of output and its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from harness import flows

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fakes" / "fake_cli.py"
RECORDING = ROOT / "tests" / "data" / "agents" / "claude_tool.out"
CORRAL = [sys.executable, "-m", "corral"]


def measure(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (bytes) of the process itself, polled."""
    started = time.perf_counter()
    out = (cwd / "last-output.txt").open("wb")
    proc = psutil.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    peak = 0
    cpu = 0.0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
            times = proc.cpu_times()
            cpu = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.01)
    wall = time.perf_counter() - started
    out.close()
    if proc.returncode != 0:
        tail = (cwd / "last-output.txt").read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return wall, cpu, peak


def best(runs: int, action) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    results = [action() for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def flat(work: Path, jobs: int, runs: int) -> list[str]:
    flow = work / "flat.yaml"
    flow.write_text(
        "concurrency: 8\njobs:\n" + "".join(f"  j{i}: {{run: ['true']}}\n" for i in range(jobs))
    )
    xargs = best(runs, lambda: measure(["sh", "-c", f"seq {jobs} | xargs -P 8 -I{{}} true"], work))
    plain = best(runs, lambda: measure([*CORRAL, "run", str(flow), "-q", "--no-store"], work))
    stored = best(runs, lambda: measure([*CORRAL, "run", str(flow), "-q"], work))
    return [
        f"flat {jobs} x true, -P 8 | xargs {xargs[0]:.2f}s "
        f"| corral --no-store {plain[0]:.2f}s ({plain[0] / xargs[0]:.2f}x) "
        f"| corral with history {stored[0]:.2f}s ({stored[0] / xargs[0]:.2f}x)",
        supervision(flow, work, jobs, runs),
    ]


def supervise_flat(work: Path, jobs: int, runs: int) -> str:
    """The supervision line alone (`--supervision-only`), with the load it ran under."""
    flow = work / "flat.yaml"
    flow.write_text(
        "concurrency: 8\njobs:\n" + "".join(f"  j{i}: {{run: ['true']}}\n" for i in range(jobs))
    )
    load = os.getloadavg()[0]
    return f"{supervision(flow, work, jobs, runs)} | load {load:.2f}-{os.getloadavg()[0]:.2f}"


def supervision(flow: Path, work: Path, jobs: int, runs: int) -> str:
    """The per-job cost of the run's supervisor: the same flat run with the jobs as
    corral's own children (CORRAL_SUPERVISE=0, the baseline), runs interleaved."""
    argv = [*CORRAL, "run", str(flow), "-q", "--no-store"]
    bare = {**os.environ, "CORRAL_SUPERVISE": "0"}
    before: list[float] = []
    after: list[float] = []
    for _ in range(max(runs, 3)):
        before.append(measure(argv, work, bare)[0])
        after.append(measure(argv, work)[0])
    cost = (min(after) - min(before)) / jobs * 1000
    return (
        f"supervision {jobs} x true, -j 8 | unsupervised {min(before):.2f}s "
        f"| supervised {min(after):.2f}s | {cost:+.2f} ms/job (target <= ~1 ms)"
    )


def memory(work: Path, jobs: int, megabytes: int) -> list[str]:
    lines = megabytes * 1024 * 1024 // 1000
    flow = work / "mem.yaml"
    flow.write_text(
        f"concurrency: {jobs}\njobs:\n"
        + "".join(
            f"  m{i}: {{run: [{sys.executable}, {FAKE}, lines, '{lines}', '1000']}}\n"
            for i in range(jobs)
        )
    )
    wall, _, peak = measure([*CORRAL, "run", str(flow), "-q", "--no-store"], work)
    logs = list((work / ".corral" / "runs").glob("*/m*/stdout.log"))
    total = sum(p.stat().st_size for p in logs)
    expected = jobs * lines * 1000
    verdict = (
        "all bytes logged"
        if total == expected and len(logs) == jobs
        else f"LOGS {total} != {expected}"
    )
    return [
        f"memory {jobs} jobs x {megabytes} MB | peak RSS {peak / 2**20:.0f} MB "
        f"| {wall:.1f}s | {verdict}"
    ]


def startup(work: Path, runs: int) -> list[str]:
    base = best(runs, lambda: measure([sys.executable, "-c", "pass"], work))
    help_ = best(runs, lambda: measure([*CORRAL, "--help"], work))
    return [f"startup corral --help {help_[0]:.3f}s | python -c pass {base[0]:.3f}s"]


def dag(work: Path, jobs: int, runs: int) -> list[str]:
    graph_text, edges = flows.dag(jobs, concurrency=16)
    graph = work / "dag.yaml"
    graph.write_text(graph_text)
    flat_flow = work / "flat16.yaml"
    flat_flow.write_text(flows.flat(jobs, concurrency=16))
    flat_run = best(
        runs, lambda: measure([*CORRAL, "run", str(flat_flow), "-q", "--no-store"], work)
    )
    dag_run = best(runs, lambda: measure([*CORRAL, "run", str(graph), "-q", "--no-store"], work))
    per_job_ms = (dag_run[0] - flat_run[0]) / jobs * 1000
    cpu_ms = (dag_run[1] - flat_run[1]) / jobs * 1000
    return [
        f"dag {jobs} jobs / {edges} edges at -j 16 | {dag_run[0]:.2f}s vs flat {flat_run[0]:.2f}s "
        f"| overhead {per_job_ms:+.2f} ms/job wall, {cpu_ms:+.2f} ms/job corral CPU"
    ]


def agents(work: Path, jobs: int, repeat: int) -> list[str]:
    stream = work / "long.jsonl"
    lines = [line for line in RECORDING.read_text().splitlines() if '"type":"result"' not in line]
    result = next(line for line in RECORDING.read_text().splitlines() if '"type":"result"' in line)
    stream.write_text("\n".join(lines * repeat + [result]) + "\n")
    size = stream.stat().st_size
    flow = work / "agents.yaml"
    flow.write_text(
        f"concurrency: {jobs}\njobs:\n"
        + "".join(f"  a{i}: {{tool: claude, prompt: go}}\n" for i in range(jobs))
    )
    wrapper = work / "claude"
    wrapper.write_text(f"#!/bin/sh\nexec cat {stream}\n")
    wrapper.chmod(0o755)
    env = {**os.environ, "CORRAL_CLAUDE_BIN": str(wrapper)}
    wall, cpu, peak = measure([*CORRAL, "run", str(flow), "-q", "--no-store"], work, env)
    megabytes = jobs * size / 2**20
    return [
        f"agents {jobs} x {size / 2**20:.1f} MB claude stream "
        f"| {cpu / megabytes * 1000:.1f} ms CPU per MB "
        f"| {megabytes / wall:.0f} MB/s | peak RSS {peak / 2**20:.0f} MB"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one run each")
    parser.add_argument(
        "--supervision-only",
        action="store_true",
        help="only the supervision line (the flat run with and without the supervisor)",
    )
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    work = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    try:
        if args.supervision_only:
            print(supervise_flat(work, 300 if args.quick else 1000, 5 if not args.quick else 1))
            return
        report = []
        report += flat(work, 300 if args.quick else 1000, runs)
        report += memory(work, 20 if args.quick else 100, 5)
        report += startup(work, 3 if args.quick else 10)
        report += dag(work, 500 if args.quick else 10_000, 1)
        report += agents(work, 10 if args.quick else 50, 100 if args.quick else 400)
        for line in report:
            print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
