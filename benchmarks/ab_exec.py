"""The `exec` row A/B: `true`, a base tree and this tree, alternated run by run.

    python benchmarks/ab_exec.py --base /var/tmp/base/src --rounds 40 -- exec -q -- true

`--base` is another checkout's `src` (e.g. `git -C /work/main archive main | tar -x -C
DIR`), run from this venv's `corral` with `PYTHONPATH` (its supervisor inherits it);
this tree runs without it. Each side runs in its own project folder with a current
history (made by one uncounted run), the order of the three flipping every round. Wall
time by `perf_counter` around the command, CPU of the command and its children by
`getrusage(RUSAGE_CHILDREN)`. Prints medians and the paired difference per round, the
figure to read on a shared machine: both sides of a pair run within a second.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORRAL = str(Path(sys.executable).with_name("corral"))


def _once(argv: list[str], cwd: Path, src: str | None) -> tuple[float, float]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    }
    if src is not None:
        env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        argv, check=False, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} in {cwd} exited {done.returncode}: {done.stderr!r}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _shown(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ms ({min(values):.1f}–{max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the base tree's src folder")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("args", nargs="+", help="corral's arguments, after --")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-ab-exec-", dir="/var/tmp"))
    sides: dict[str, tuple[list[str], Path, str | None]] = {
        "base": ([CORRAL, *args.args], work / "base", args.base),
        "this": ([CORRAL, *args.args], work / "this", None),
        "true": (["true"], work, None),
    }
    try:
        for argv, cwd, src in sides.values():
            cwd.mkdir(exist_ok=True)
            _once(argv, cwd, src)  # a current history, warm caches: not counted
        got: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                got[side].append(_once(*sides[side]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"corral {' '.join(args.args)}: {args.rounds} rounds, load {load}")
    for side, pairs in got.items():
        walls = [w * 1e3 for w, _ in pairs]
        cpus = [c * 1e3 for _, c in pairs]
        print(f"{side:5} wall {_shown(walls)} | CPU with children {_shown(cpus)}")
    wall_d = [(t[0] - b[0]) * 1e3 for b, t in zip(got["base"], got["this"], strict=True)]
    cpu_d = [(t[1] - b[1]) * 1e3 for b, t in zip(got["base"], got["this"], strict=True)]
    print(
        f"this - base, paired per round: wall {statistics.median(wall_d):+.1f} ms, "
        f"CPU {statistics.median(cpu_d):+.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
