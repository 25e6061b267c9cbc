"""`make bench`: the targets table (bench_targets.py), then the micro benchmarks.

    python benchmarks/run_all.py [--quick] [--no-micro] [bench_targets.py options...]

`--quick` runs everything at tiny sizes (a smoke run: the harness works, no figure is
worth reading); other options (`--only`, `--rounds`, `--no-install`, `--out`,
`--strict`) go to bench_targets.py, and `--only` also skips the micro benchmarks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# each micro benchmark with its arguments: (full run, quick run)
MICRO = {
    "bench_parsing.py": ([], ["--rounds", "20"]),
    "bench_plan.py": ([], ["--jobs", "1000", "--edges", "3000", "--repeat", "2"]),
    "bench_store.py": ([], ["--events", "20000", "--throughput", "5000"]),
    # the history writer's part of the Claude row, and plan -> JobRequest per flat job
    "bench_history_events.py": ([], ["--jobs", "2", "--repeat", "1"]),
    "bench_prepare.py": ([], ["--jobs", "200", "--repeat", "3"]),
    "bench_server.py": ([], ["--quick"]),
    # the flat run with and without the run's supervisor, and the older whole-run rows
    "bench_run.py": ([], ["--quick"]),
}


def main() -> int:
    args = sys.argv[1:]
    quick = "--quick" in args
    micro = "--no-micro" not in args and not any(a.startswith("--only") for a in args)
    targets = [a for a in args if a != "--no-micro"]
    print("== bench_targets.py", flush=True)
    failed = subprocess.call([sys.executable, str(HERE / "bench_targets.py"), *targets]) != 0
    if micro:
        for name, (full, small) in MICRO.items():
            print(f"== {name}", flush=True)
            command = [sys.executable, str(HERE / name), *(small if quick else full)]
            failed |= subprocess.call(command) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
