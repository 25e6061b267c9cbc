"""A third-party package that is only on PYTHONPATH (its `.dist-info` with entry points,
nothing installed, corral not forked) adds an executor and a history store, and the real
CLI uses them: `--executor NAME`, a flow's `executor:`, and `--store SCHEME://...`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import corral, write_flow

PLUGIN = Path(__file__).parent / "data" / "plugin"


def plugin_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(PLUGIN) + (os.pathsep + path if path else "")}


FLOW = """
jobs:
  hello: {run: "echo hello"}
  flaky:
    run: "FAKE flaky STATE 2"
    retries: 2
    retry_delay: 0.05
  after: {needs: [hello, flaky], run: "echo done"}
"""


def test_an_executor_and_a_store_from_a_plugin_on_the_pythonpath(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, FLOW.replace("STATE", str(tmp_path / "flaky.state")))
    store = f"jsonl://{tmp_path / 'history'}"
    result = corral(
        "run",
        str(flow),
        "--json",
        "--executor",
        "counting",
        "--store",
        store,
        cwd=tmp_path,
        env=plugin_env(),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [(j["name"], j["status"], j["attempts"]) for j in summary["jobs"]] == [
        ("hello", "succeeded", 1),
        ("flaky", "succeeded", 2),
        ("after", "succeeded", 1),
    ]
    # the plugin's executor ran every attempt: the retry too
    counted = json.loads((Path(summary["log_root"]) / "counting-executor.json").read_text())
    assert counted == {"attempts": 4, "runs": ["hello#1", "flaky#1", "flaky#2", "after#1"]}
    # the plugin's store holds the run, and the history commands read it back through it
    run_id = summary["run_id"]
    assert (tmp_path / "history" / f"{run_id}.jsonl").exists()
    assert not (tmp_path / ".corral" / "corral.db").exists()  # nothing in the default
    listed = corral("runs", "--json", "--store", store, cwd=tmp_path, env=plugin_env())
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)["runs"]
    assert (run["id"], run["status"], run["jobs"]["succeeded"]) == (run_id, "succeeded", 3)
    shown = corral("show", run_id, "--json", "--store", store, cwd=tmp_path, env=plugin_env())
    assert shown.returncode == 0, shown.stderr
    jobs = {j["name"]: j for j in json.loads(shown.stdout)["jobs"]}
    assert [a["status"] for a in jobs["flaky"]["attempts"]] == ["failed", "succeeded"]
    exported = corral(
        "export", run_id, "--format", "jsonl", "--store", store, cwd=tmp_path, env=plugin_env()
    )
    kinds = [json.loads(line)["event"]["kind"] for line in exported.stdout.splitlines()]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished"


def test_a_flow_names_its_executor(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "executor: counting\njobs:\n  a: {run: 'echo a'}\n")
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path, env=plugin_env())
    assert result.returncode == 0, result.stderr
    log_root = Path(json.loads(result.stdout)["log_root"])
    assert json.loads((log_root / "counting-executor.json").read_text())["attempts"] == 1
    # the command line wins over the flow
    again = corral(
        "run", str(flow), "--json", "--no-store", "--executor", "local", cwd=tmp_path,
        env=plugin_env(),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert not (Path(json.loads(again.stdout)["log_root"]) / "counting-executor.json").exists()


def test_without_the_plugin_the_names_are_unknown(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "executor: counting\njobs:\n  a: {run: 'echo a'}\n")
    result = corral("run", str(flow), "--no-store", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "corral: error: unknown executor 'counting' (known executors: local)"
    )
    stored = corral("runs", "--store", "jsonl:///x", cwd=tmp_path)
    assert stored.returncode == 3
    assert "unsupported store 'jsonl' in jsonl:///x" in stored.stderr
