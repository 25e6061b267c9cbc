"""The durability check (scripts/durability.py) in small: kill -9 corral mid-run, resume.

The full check is `python scripts/durability.py` (20 rounds of 30 jobs, docs/durability.md);
here 2 rounds of 10 jobs, the second also killing the first resume, keep CI fast.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "durability.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("durability", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["durability"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_flow_is_a_deterministic_dag_per_seed(tmp_path: Path) -> None:
    durability = _script()
    flow = durability.build_flow(random.Random("7-1"), 20, tmp_path)
    assert flow == durability.build_flow(random.Random("7-1"), 20, tmp_path)
    assert flow != durability.build_flow(random.Random("7-2"), 20, tmp_path)
    names = list(flow["jobs"])
    assert len(names) == 20
    for index, name in enumerate(names):
        job = flow["jobs"][name]
        assert set(job.get("needs", [])) <= set(names[:index])  # earlier jobs only: a DAG
        assert 0.2 <= float(job["run"][4]) <= 2.0
    assert any(job["run"][6] in ("1", "2") for job in flow["jobs"].values())  # grandchildren


def test_the_ledger_reads_starts_grandchildren_and_ends(tmp_path: Path) -> None:
    path = tmp_path / "ledger.txt"
    path.write_text("j00 101 99\nj00 grandchild 102\nj01 103 99\nj00 done\n")
    ledger = _script().Ledger.read(path)
    assert ledger.starts == [("j00", 101, 99), ("j01", 103, 99)]
    assert ledger.grandchildren == [("j00", 102)]
    assert ledger.done == ["j00"]
    assert sorted(ledger.pids()) == [101, 102, 103]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_minus_nine_then_resume(tmp_path: Path) -> None:
    options = {"--rounds": 2, "--jobs": 10, "--seed": 3, "--max-kill": 3, "--chain-every": 2}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dir", str(tmp_path)]
        + [str(part) for pair in options.items() for part in pair],
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2/2 rounds passed" in done.stdout, done.stdout
    assert "duplicated side effects 0, never completed 0, processes left 0, stale rows 0" in (
        done.stdout
    )
