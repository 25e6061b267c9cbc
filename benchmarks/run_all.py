"""`make bench`: every benchmark, one after the other (each prints its own table)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ORDER = ["bench_run.py", "bench_parsing.py", "bench_plan.py", "bench_store.py", "bench_server.py"]


def main() -> int:
    # an installed package has its bytecode compiled (pip does it); an editable checkout
    # under PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start
    subprocess.call([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "src")])
    failed = 0
    for name in ORDER:
        print(f"== {name}", flush=True)
        failed |= subprocess.call([sys.executable, str(HERE / name), *sys.argv[1:2]]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
