"""The benchmark harness (benchmarks/) keeps working: its quick mode and its instruments.

No timing is asserted here (the machines are shared and noisy): these tests check that
every row of the targets table still runs end to end at tiny sizes, and that the
instruments measure what they say (own against tree CPU, peak RSS, the pseudo-terminal,
per-round ratios, a deterministic history fixture, peers reported when missing).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

from harness import fixtures, peers  # noqa: E402  (benchmarks/ is not a package)
from harness.measure import Command, Sample, measure  # noqa: E402
from harness.report import per_round, stat  # noqa: E402
from harness.rounds import Entry, emptied, run_rounds  # noqa: E402

# every row of issue 14's table, by the key each has in a quick run's results.json
QUICK_ROWS = [
    "exec", "validate", "runs", "flat40", "claude", "claude-fresh", "jsonl", "live", "show",
    "flat150", "dag150",
]  # fmt: skip


@pytest.fixture
def bench_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CORRAL_BENCH_CACHE", str(cache))
    return cache


@pytest.mark.slow
def test_quick_run_measures_every_row(tmp_path: Path, bench_cache: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_targets.py"),
            "--quick",
            "--no-install",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CORRAL_BENCH_CACHE": str(bench_cache)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    rows = {row["key"]: row for row in results["rows"]}
    assert list(rows) == QUICK_ROWS
    for row in rows.values():
        # a quick run is a smoke run: it never claims a pass or a miss
        assert row["verdict"]["passed"] is None, row["key"]
        assert row["cells"]["target"], row["key"]
        for contender in row["contenders"]:
            samples = contender["samples"]
            if contender["missing"]:  # a peer this machine lacks: said why, not run
                assert samples == [] and "not installed" in contender["missing"]
                continue
            assert len(samples) == 1, (row["key"], contender["key"])
            assert samples[0]["error"] is None, (row["key"], contender["key"], samples[0])
            assert samples[0]["wall_s"] > 0
    corral_keys = {c["key"] for r in rows.values() for c in r["contenders"]}
    assert {"corral", "nostore", "xargs", "live", "prefixed", "text", "json"} <= corral_keys
    # the live table really drew on a terminal
    live = {c["key"]: c for c in rows["live"]["contenders"]}
    assert live["live"]["samples"][0]["tty_bytes"] > 0
    report = (out / "report.md").read_text()
    assert "| workload | corral (history) |" in report
    for row in rows.values():
        assert row["title"] in report


def test_own_cpu_excludes_children_tree_cpu_includes_them(tmp_path: Path) -> None:
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    child = f"{sys.executable} -c '{burn}'"
    sample = measure(Command(["sh", "-c", f"{child}; exit 0"], tmp_path), tmp_path / "out")
    assert sample.error is None
    assert sample.tree_cpu >= 0.3  # the grandchild's CPU, reaped by sh
    assert sample.own_cpu < sample.tree_cpu - 0.2  # sh itself did next to nothing


def test_peak_rss_and_exit_code(tmp_path: Path) -> None:
    grow = "import time\nb = bytearray(80 * 2**20)\nb[::4096] = b'x' * len(b[::4096])\n"
    sample = measure(
        Command([sys.executable, "-c", grow + "time.sleep(0.3)"], tmp_path), tmp_path / "o"
    )
    assert sample.peak_rss >= 80 * 2**20
    failed = measure(Command(["sh", "-c", "echo nope >&2; exit 3"], tmp_path), tmp_path / "f")
    assert failed.exit_code == 3
    assert failed.error is not None and "nope" in failed.error


def test_pty_gives_a_terminal_of_the_set_size(tmp_path: Path) -> None:
    probe = "import os, sys; print(sys.stdout.isatty(), os.get_terminal_size().columns)"
    out = tmp_path / "tty"
    sample = measure(Command([sys.executable, "-c", probe], tmp_path, pty=True), out)
    assert sample.error is None
    assert "True 160" in out.read_text()
    assert sample.tty_bytes == len(out.read_bytes())


def _sample(wall: float) -> Sample:
    return Sample(wall, wall, wall, 0, 0, 0.0, 0)


def test_ratios_are_taken_round_by_round() -> None:
    # a slow second round slows both tools: per-round ratios stay at 2x
    rounds = {
        "tool": [_sample(2.0), _sample(20.0), _sample(4.0)],
        "base": [_sample(1.0), _sample(10.0), _sample(2.0)],
    }
    ratios = per_round(rounds, lambda a, b: a.wall / b.wall, "tool", "base")
    assert ratios == [2.0, 2.0, 2.0]
    summary = stat(ratios)
    assert summary is not None and summary.show(1, "×") == "2.0× (2.0–2.0)"
    # a failed round is left out of the ratio rather than compared with nothing
    rounds["tool"][1] = None
    assert per_round(rounds, lambda a, b: a.wall / b.wall, "tool", "base") == [2.0, 2.0]


def test_rounds_are_interleaved_and_rotated(tmp_path: Path) -> None:
    log = tmp_path / "order"

    def entry(key: str) -> Entry:
        return Entry(key, key, Command(["sh", "-c", f"echo {key} >> {log}"], tmp_path))

    got = run_rounds("t", [entry("a"), entry("b"), entry("c")], 3, tmp_path, warmup=True)
    # the warm-up round is not recorded; each round starts one tool further on
    assert log.read_text().split() == ["c", "a", "b", "a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [len(c.rounds) for c in got.values()] == [3, 3, 3]


def test_a_clean_up_moves_a_runs_files_aside_until_every_row_is_measured(tmp_path: Path) -> None:
    # ext4 finds new inodes slowly just after many deletions: the next round must not pay
    runs, trash = tmp_path / "runs", tmp_path / "trash"
    cleanup = emptied(runs, trash=trash)
    for number in range(2):
        (runs / f"run{number}").mkdir(parents=True)
        (runs / f"run{number}" / "stdout.log").write_text("x")
        cleanup()
        assert list(runs.iterdir()) == []
    assert sorted(p.name for p in trash.glob("*/*")) == ["run0", "run1"]


def test_history_fixture_is_deterministic(tmp_path: Path, bench_cache: Path) -> None:
    stream = fixtures.claude_stream(20_000)
    spec = [["flat", 30], ["agents", 2, str(stream)]]
    first, counts = fixtures.history(spec, "t")
    assert counts["runs"] == 2 and counts["jobs"] == 32
    copy = tmp_path / "first.db"
    copy.write_bytes(first.read_bytes())
    first.unlink()
    first.with_suffix(".json").unlink()
    second, again = fixtures.history(spec, "t")
    assert again == {**counts, "bytes": again["bytes"]}

    def rows(path: Path) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as db:
            tables = ("runs", "jobs", "attempts", "job_models", "events")
            return [row for t in tables for row in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]

    assert rows(copy) == rows(second)
    # and the agent jobs hold what a replay of the stream stores
    with sqlite3.connect(second) as db:
        kinds = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    assert kinds["job.started"] == 32 and kinds["agent.result"] == 2


def test_missing_peers_are_reported_not_installed(
    tmp_path: Path, bench_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    monkeypatch.setenv("PATH", str(fake))
    parallel = peers.gnu_parallel(install=False)
    assert not parallel.ok and "not installed" in parallel.note
    # moreutils' `parallel` is another program: refused, not mistaken for GNU parallel
    other = fake / "parallel"
    other.write_text("#!/bin/sh\necho 'parallel [OPTIONS] command -- arguments'\n")
    other.chmod(0o755)
    refused = peers.gnu_parallel(install=False)
    assert not refused.ok and "is not GNU parallel" in refused.note
    zen = peers.zen(bench_cache, install=False)
    assert not zen.ok and "not installed" in zen.note


def test_server_bench_cpu_use_is_the_burst_s() -> None:
    """bench_server's CPU use counts the burst of live frames, not the run's gate: the few
    frames made in the gate (a client connected early sees them) do not start it."""
    import bench_server

    gate = [[0.5, 1.0]]  # RunStarted, the gate's JobStarted
    burst = [[10.0 + i / 1000 for i in range(300)] for _ in range(2)]
    assert bench_server._burst_start(gate + burst) == pytest.approx(10.002, abs=1e-3)
    assert bench_server._burst_start([[]]) == float("inf")
    # /proc/stat samples: (time, busy ticks, total ticks); idle until 10, then busy 3 of 4
    samples = [(t, 0, t * 100) for t in range(11)]
    samples += [(10 + t, 75 * t, 1000 + 100 * t) for t in range(1, 5)]
    assert bench_server._busy(samples, 10.0, 14.0) == pytest.approx(0.75)
    assert bench_server._busy(samples, 0.0, 9.0) == 0.0
    assert bench_server._busy(samples, 20.0, 30.0) != bench_server._busy(samples, 20.0, 30.0)


def _ab_exec(rounds: int, *command: str) -> subprocess.CompletedProcess[str]:
    # the base is this tree's own src: both sides run, the harness is what is checked
    return subprocess.run(
        [sys.executable, str(BENCH / "ab_exec.py"), "--base", str(ROOT / "src"),
         "--rounds", str(rounds), "--", *command],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_exec_ab_runs_both_trees_in_alternation_and_pairs_them() -> None:
    result = _ab_exec(2, "exec", "-q", "--", "true")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("corral exec -q -- true: 2 rounds, load ")
    assert [line.split()[0] for line in lines[1:4]] == ["base", "this", "true"]
    assert lines[4].startswith("this - base, paired per round: wall ")


def test_the_exec_ab_stops_on_a_failing_command() -> None:
    result = _ab_exec(1, "exec", "-q", "--", "false")
    assert result.returncode == 1
    assert "exited 1" in result.stderr
