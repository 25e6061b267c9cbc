"""Inputs of the benchmarks: streams, flows, argument files and the large histories.

Everything is deterministic. Small inputs (flows, argument lists) are written into the
run's work folder; big ones (the ~2 MB Claude stream, the 5 MB JSON-lines file, the
history databases) into the cache (`CORRAL_BENCH_CACHE`, default
`~/.cache/corral/bench`), under a name derived from what they are made of, so they are
built once and rebuilt when their recipe or the store's migrations change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
RECORDING = DATA / "claude_tool_stream.jsonl"
HISTORY_BUILDER = HERE / "history.py"
BASE_TS = 1_790_000_000.0  # 2026-09-21, the first run of a generated history


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corral" / "bench"
    folder = Path(os.environ.get("CORRAL_BENCH_CACHE") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _publish(tmp: Path, final: Path) -> Path:
    tmp.replace(final)  # atomic: a half-built file is never taken for a cached one
    return final


def claude_stream(size: int, fresh_ids: bool = False) -> Path:
    """A Claude stream-json of about `size` bytes: one init, rounds of the conversation.

    Each round is the recording's four conversation lines (text, tool_use, tool_result,
    text), then the recording's `result` line ends it. By default the rounds repeat the
    lines as recorded: the construction of the performance review's figures (its
    "variant b"), which the issue's targets are set against. With `fresh_ids` every round
    gets new message and tool-call ids, as a real session has: each round is then a new
    API message whose usage counts, a heavier stream for the same bytes.
    """
    lines = RECORDING.read_text(encoding="utf-8").splitlines()
    init, body, result = lines[0], lines[1:-1], lines[-1]
    recipe = hashlib.sha256(RECORDING.read_bytes() + f"{size} {fresh_ids}".encode())
    kind = "fresh" if fresh_ids else "same"
    final = cache_dir() / f"claude-{size}-{kind}-{recipe.hexdigest()[:12]}.jsonl"
    if final.exists():
        return final
    out = [init]
    total = len(init) + len(result) + 2
    turn = 0
    while total < size:
        for line in body:
            text = line
            if fresh_ids:
                text = text.replace("msg_mock_", f"msg_{turn:05d}_")
                text = text.replace("toolu_mock_", f"toolu_{turn:05d}_")
            out.append(text)
            total += len(text.encode()) + 1
        turn += 1
    out.append(result)
    tmp = final.with_suffix(".tmp")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    return _publish(tmp, final)


def json_lines(lines: int, width: int) -> Path:
    """`lines` JSON objects of exactly `width` bytes each, newline included."""
    final = cache_dir() / f"lines-{lines}x{width}.jsonl"
    if final.exists():
        return final
    tmp = final.with_suffix(".tmp")
    with tmp.open("w", encoding="ascii") as out:
        for i in range(lines):
            head = f'{{"seq": {i}, "level": "info", "msg": "'
            tail = '"}\n'
            out.write(head + "x" * (width - len(head) - len(tail)) + tail)
    return _publish(tmp, final)


def lines_in(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


# -- flows and argument files (cheap: written into the work folder) ------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def args_file(folder: Path, jobs: int) -> Path:
    """One argument per line, for xargs and GNU parallel."""
    return write(folder / f"args{jobs}.txt", "".join(f"{i}\n" for i in range(jobs)))


def fake_claude(folder: Path, stream: Path) -> Path:
    """A `claude` that replays `stream` at full speed, whatever its arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    script = write(folder / "claude", f"#!/bin/sh\nexec cat {shlex.quote(str(stream))}\n")
    script.chmod(0o755)
    return script


# -- histories --------------------------------------------------------------------------------


def _migrations_fingerprint() -> str:
    """Names of the store's migrations: a new one means the fixture must be rebuilt."""
    import corral.store

    folder = Path(corral.store.__file__).parent / "migrations"
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.py"))
    return ",".join(names)


def history(spec_runs: list[list[object]], label: str) -> tuple[Path, dict[str, int]]:
    """A SQLite history holding `spec_runs` (see history.py), built once and cached."""
    spec = {"runs": spec_runs, "base_ts": BASE_TS}
    recipe = hashlib.sha256(
        HISTORY_BUILDER.read_bytes()
        + (HERE / "flows.py").read_bytes()
        + json.dumps(spec, sort_keys=True).encode()
        + _migrations_fingerprint().encode()
    ).hexdigest()[:12]
    final = cache_dir() / f"history-{label}-{recipe}.db"
    marker = final.with_suffix(".json")
    if final.exists() and marker.exists():
        return final, json.loads(marker.read_text())
    for stale in cache_dir().glob(f"history-{label}-*"):  # an older recipe's: never read again
        stale.unlink()
    tmp = final.with_suffix(".building.db")
    spec_file = final.with_suffix(".spec.json")
    spec_file.write_text(json.dumps(spec))
    print(f"  building {final.name} (once; cached for later runs)...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "harness.history", str(tmp), str(spec_file)],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building {final.name} failed: {done.stderr.strip()[-800:]}")
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(f"{tmp}-wal").exists():  # the store closed without checkpointing: not complete
        raise RuntimeError(f"building {final.name} left a write-ahead log behind")
    _publish(tmp, final)
    marker.write_text(json.dumps(counts))
    return final, counts
