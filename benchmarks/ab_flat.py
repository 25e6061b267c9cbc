"""The flat row A/B: xargs, a base tree and this tree in the same rounds, in turn.

    python benchmarks/ab_flat.py --base /var/tmp/base/src --jobs 1000 --rounds 5

`--base` is another checkout's `src` (e.g. `git -C /work/main archive main | tar -x -C
DIR`), run from this venv with `PYTHONPATH`; this tree's `src` is the other contender.
Each round runs xargs and both trees, the order rotating from round to round, each tree
in its own project folder with its own `.corral` (history on, `-q`); a run's folder is
moved aside (never deleted: ext4 without a journal is slow to find new inodes after
mass deletions, see "Wave 9: w9flat"), and nothing is deleted until the end. One warm-up
round is not recorded. Prints each round, then medians and ranges: wall ÷ xargs of the
same round, own CPU and tree CPU per job (the `harness.measure` instruments).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness.flows import flat
from harness.measure import Command, Sample, measure, raise_fd_limit

HERE = Path(__file__).resolve().parent.parent / "src"


def _shown(values: list[float], digits: int = 3) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the base tree's src folder")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, help="keep the samples here (results.json)")
    args = parser.parse_args()
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="corral-ab-", dir="/var/tmp"))
    try:
        samples = _rounds(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        dumped = {k: [s.as_dict() for s in v] for k, v in samples.items()}
        (args.out / "results.json").write_text(json.dumps(dumped, indent=1))
    return 0


def _rounds(work: Path, args: argparse.Namespace) -> dict[str, list[Sample]]:
    jobs = args.jobs
    trees = {"base": str(Path(args.base).resolve()), "this": str(HERE)}
    listed = work / "args.txt"
    listed.write_text("".join(f"{i}\n" for i in range(jobs)))
    xargs = ["xargs", "-P", str(args.concurrency), "-n", "1", "-a", str(listed), "true"]
    commands = {"xargs": Command(xargs, work)}
    for name, src in trees.items():
        project = work / name
        project.mkdir()
        (project / "flat.yaml").write_text(flat(jobs, args.concurrency))
        env = {**os.environ, "PYTHONPATH": src}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        argv = [sys.executable, "-m", "corral", "run", "flat.yaml", "-q"]
        commands[name] = Command(argv, project, env)
    trash = work / "trash"
    trash.mkdir()

    def aside() -> None:
        for name in trees:
            runs = work / name / ".corral" / "runs"
            for run in runs.iterdir() if runs.exists() else ():
                run.rename(trash / f"{name}-{run.name}-{time.monotonic_ns()}")

    order = list(commands)
    for name in order:  # warm-up
        measure(commands[name], work / f"{name}.out")
        aside()
    samples: dict[str, list[Sample]] = {name: [] for name in order}
    for number in range(args.rounds):
        turn = number % len(order)
        for name in order[turn:] + order[:turn]:
            sample = measure(commands[name], work / f"{name}.out")
            aside()
            if sample.exit_code != 0:
                raise SystemExit(f"{name} failed: {(work / f'{name}.out').read_text()[-2000:]}")
            samples[name].append(sample)
        xargs_wall = samples["xargs"][-1].wall
        shown = [f"xargs {xargs_wall:.2f}s"] + [
            f"{n} {samples[n][-1].wall:.2f}s {samples[n][-1].wall / xargs_wall:.2f}x"
            f" own {samples[n][-1].own_cpu / jobs * 1e3:.3f} ms/job"
            for n in trees
        ]
        print(f"round {number + 1}: " + ", ".join(shown) + f"; load {sample.load:.1f}", flush=True)
    walls = [s.wall for s in samples["xargs"]]
    print(f"{jobs} jobs, {args.rounds} rounds; xargs wall {_shown(walls)} s")
    for name in trees:
        got = samples[name]
        ratio = [s.wall / x.wall for s, x in zip(got, samples["xargs"], strict=True)]
        loads = [s.load for s in got]
        own = [s.own_cpu / jobs * 1e3 for s in got]
        tree = [s.tree_cpu / jobs * 1e3 for s in got]
        print(
            f"{name}: ÷ xargs {_shown(ratio, 2)}; own CPU/job {_shown(own)} ms;"
            f" tree CPU/job {_shown(tree)} ms; load {min(loads):.1f}–{max(loads):.1f}"
        )
    return samples


if __name__ == "__main__":
    sys.exit(main())
