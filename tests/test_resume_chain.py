"""A run and its resumes are one logical run in `runs`, `show`, `usage` and `export`.

A real run of three agent jobs (fake Claude replaying a recorded stream) is killed with
kill -9 while its second job is still running, then resumed: the first job is kept, the
second adopted, the third run by the resume. The same flow run once without a kill is
the measure of the distinct work: the chain's figures must equal it, nothing counted
twice, nothing lost.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import corral, wait_until

DATA = Path(__file__).parent / "data" / "agents"
FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"
ENV = {"FAKE_AGENT_DIR": str(DATA), "CORRAL_CLAUDE_BIN": str(FAKE_AGENT), "NO_COLOR": "1"}
FLOW = """\
version: 1
kill_grace: 1s
jobs:
  a: {tool: claude, prompt: "a", env: {FAKE_AGENT_SCRIPT: claude_tool}}
  b:
    tool: claude
    prompt: "b"
    needs: [a]
    env: {FAKE_AGENT_SCRIPT: claude_tool, FAKE_AGENT_PACE: "@PACE@"}
  c: {tool: claude, prompt: "c", needs: [b], env: {FAKE_AGENT_SCRIPT: claude_tool}}
"""


def _json(folder: Path, *args: str) -> Any:
    result = corral(*args, "--json", cwd=folder, env=ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _b_started_printing(folder: Path) -> bool:
    logs = list((folder / ".corral" / "runs").glob("*/b/stdout.log"))
    return bool(logs) and logs[0].stat().st_size > 0


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The plain run's figures, and a killed-and-resumed run of the same flow."""
    plain = tmp_path_factory.mktemp("plain")
    (plain / "flow.yaml").write_text(FLOW.replace("@PACE@", "0"))
    assert corral("run", "flow.yaml", "-q", cwd=plain, env=ENV).returncode == 0
    folder = tmp_path_factory.mktemp("killed")
    (folder / "flow.yaml").write_text(FLOW.replace("@PACE@", "0.5"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", "flow.yaml", "-q"],
        cwd=folder,
        env={**os.environ, **ENV},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # b has printed part of its stream (a line each 0.5 s): kill corral under it
        wait_until(lambda: _b_started_printing(folder), "job b to print")
    finally:
        proc.kill()
        proc.wait()
    killed = _json(folder, "runs", "--no-chain")["runs"][0]["id"]
    resumed = corral("resume", killed, "-q", cwd=folder, env=ENV)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    runs = _json(folder, "runs", "--no-chain")["runs"]
    return {
        "plain": _json(plain, "runs")["runs"][0],
        "plain_usage": _json(plain, "usage", "--by", "job")["rows"],
        "folder": folder,
        "killed": killed,
        "resumed": runs[0]["id"],
        "separate": runs,
    }


def test_runs_lists_the_chain_once_with_the_figures_of_the_distinct_work(
    chain: dict[str, Any],
) -> None:
    assert [r["id"] for r in chain["separate"]] == [chain["resumed"], chain["killed"]]
    rows = _json(chain["folder"], "runs")["runs"]
    assert len(rows) == 1
    row, plain = rows[0], chain["plain"]
    assert row["id"] == chain["resumed"] and row["status"] == "succeeded"
    assert row["chain"]["origin"] == chain["killed"] and row["chain"]["resumes"] == 1
    assert [r["id"] for r in row["chain"]["runs"]] == [chain["killed"], chain["resumed"]]
    # each job once: a kept from the killed run, b adopted, c run by the resume
    assert row["jobs"] == {"total": 3, "succeeded": 3, "failed": 0, "skipped": 0, "cancelled": 0}
    assert row["tokens"] == plain["tokens"] and row["tokens"]["input"] > 0
    assert row["cost"] == plain["cost"]
    assert row["chain"]["totals"]["tokens"] == plain["tokens"]
    # the chain's start is the killed run's
    killed = next(r for r in chain["separate"] if r["id"] == chain["killed"])
    assert row["started_at"] == killed["started_at"]
    # run alone, the killed run holds a's figures only (b's partial ones are cleared: the
    # resume adopted b and counted it whole from its log): three equal jobs, a third each
    assert killed["tokens"]["input"] * 3 == plain["tokens"]["input"]
    assert killed["jobs"]["cancelled"] == 2 and killed["jobs"]["succeeded"] == 1
    text = corral("runs", cwd=chain["folder"], env=ENV).stdout
    assert f"1 (from {chain['killed']})" in text
    assert len([line for line in text.splitlines() if line.strip()]) == 2  # header + one run


def test_show_lists_the_chain_and_its_totals(chain: dict[str, Any]) -> None:
    shown = _json(chain["folder"], "show", chain["resumed"])
    assert shown["run"]["id"] == chain["resumed"]
    assert shown["chain"]["totals"]["tokens"] == chain["plain"]["tokens"]
    assert shown["chain"]["totals"]["jobs"]["succeeded"] == 3
    assert [k["name"] for k in shown["kept"]] == ["a"]
    text = corral("show", chain["resumed"], cwd=chain["folder"], env=ENV).stdout
    assert f"{chain['killed']} (cancelled) -> {chain['resumed']} (succeeded)" in text
    # the killed run alone, and who carried it on
    earlier = _json(chain["folder"], "show", chain["killed"])
    assert earlier["chain"]["resumed_by"] == [chain["resumed"]]
    b = next(job for job in earlier["jobs"] if job["name"] == "b")
    assert b["status"] == "cancelled" and "adopted it" in b["final"]["error"]  # not run again
    alone = _json(chain["folder"], "show", chain["resumed"], "--no-chain")
    assert "chain" not in alone and alone["kept"] == []


def test_usage_counts_each_attempt_once(chain: dict[str, Any]) -> None:
    rows = _json(chain["folder"], "usage", "--by", "job")["rows"]
    assert rows == chain["plain_usage"]


def test_export_carries_the_chain_without_counting_twice(chain: dict[str, Any]) -> None:
    folder = chain["folder"]
    text = corral("export", chain["resumed"], "--format", "csv", cwd=folder, env=ENV).stdout
    attempts = list(csv.DictReader(io.StringIO(text)))
    assert {a["run_id"] for a in attempts} == {chain["killed"], chain["resumed"]}
    assert text.count("run_id,") == 1  # one header
    plain = chain["plain"]["tokens"]
    for kind in ("input", "output"):
        assert sum(int(a[f"{kind}_tokens"]) for a in attempts) == plain[kind]
    document = json.loads(corral("export", chain["resumed"], cwd=folder, env=ENV).stdout)
    assert document["chain"]["totals"]["tokens"] == plain
    assert {e["run_id"] for e in document["events"]} == {chain["killed"], chain["resumed"]}
    lines = corral("export", chain["resumed"], "--format", "jsonl", cwd=folder, env=ENV).stdout
    assert len(lines.splitlines()) == len(document["events"])
    alone = json.loads(corral("export", chain["resumed"], "--no-chain", cwd=folder, env=ENV).stdout)
    assert {e["run_id"] for e in alone["events"]} == {chain["resumed"]}


def test_runs_status_filters_on_the_chain_s_status(chain: dict[str, Any]) -> None:
    folder = chain["folder"]
    # the killed run is cancelled, but its logical run (newest: the resume) succeeded
    assert _json(folder, "runs", "--status", "cancelled")["runs"] == []
    (line,) = _json(folder, "runs", "--status", "succeeded")["runs"]
    assert line["id"] == chain["resumed"] and line["chain"]["origin"] == chain["killed"]
    alone = _json(folder, "runs", "--status", "cancelled", "--no-chain")["runs"]
    assert [r["id"] for r in alone] == [chain["killed"]]


def test_runs_reads_each_run_once_however_many_chains(tmp_path: Path) -> None:
    """`runs --status X` reads every run (the filter is on each chain's newest run), so
    it must stay linear: one listing, and one read per run of a chained line."""
    from corral.app.chain import logical_runs
    from corral.events.types import RunFinished, RunStarted
    from corral.models import RunStatus
    from corral.store import StoreWriter, open_store

    store = open_store(None, tmp_path / "corral.db")
    writer = StoreWriter(store)
    chains, plain = 40, 20
    for n in range(chains * 2 + plain):
        chained = n < chains * 2
        writer(
            RunStarted(
                run_id=f"run-{n:04d}",
                flow_name="f",
                flow_path="f.yaml",
                jobs=(),
                started_at=1000.0 + n,
                resumed_from=f"run-{n - 1:04d}" if chained and n % 2 else None,
            )
        )
        writer(RunFinished(run_id=f"run-{n:04d}", status=RunStatus.SUCCEEDED, ended_at=2000.0))
    writer.close()
    calls = {"list_runs": 0, "get_run": 0}

    class Counting:
        def __getattr__(self, name: str) -> Any:
            if name in calls:
                calls[name] += 1
            return getattr(store, name)

    found = logical_runs(
        Counting(),  # type: ignore[arg-type]
        status="succeeded",
        flow=None,
        since=None,
        limit=None,
    )
    assert len(found) == chains + plain
    assert sum(len(run.chain) == 2 for run in found) == chains
    assert calls == {"list_runs": 1, "get_run": chains * 2}
    store.close()


def test_resumers_are_found_by_a_direct_query_whatever_the_flow_path(tmp_path: Path) -> None:
    """`show` (resumed_by) and `resume` (newest of the chain) ask for a run's resumers:
    one query on `runs.resumed_from`, which also finds a resume whose flow moved."""
    from corral.app.chain import resumed_by
    from corral.events.types import RunStarted
    from corral.store import StoreWriter, open_store

    store = open_store(None, tmp_path / "corral.db")
    writer = StoreWriter(store)
    for run_id, path, resumed_from, at in [
        ("run-r", "a.yaml", None, 1.0),
        ("run-other", "a.yaml", None, 2.0),
        ("run-r2", "moved/a.yaml", "run-r", 3.0),
        ("run-r3", "a.yaml", "run-r", 4.0),
    ]:
        writer(
            RunStarted(
                run_id=run_id,
                flow_name="a",
                flow_path=path,
                jobs=(),
                started_at=at,
                resumed_from=resumed_from,
            )
        )
    writer.close()
    assert resumed_by(store, store.get_run("run-r").run) == ["run-r3", "run-r2"]
    assert resumed_by(store, store.get_run("run-r2").run) == []
    store.close()


def test_runs_and_usage_over_the_server_equal_the_local_outputs(
    chain: dict[str, Any], tmp_path: Path
) -> None:
    pytest.importorskip("fastapi")
    from tests.serverkit import start_server

    folder = chain["folder"]
    server = start_server(folder)
    try:
        client = {**ENV, "CORRAL_TOKEN": server.token, "XDG_CONFIG_HOME": str(tmp_path)}

        def both(*args: str) -> tuple[str, str]:
            local = corral(*args, cwd=folder, env=ENV)
            remote = corral(*args, "--server", server.url, cwd=tmp_path, env=client)
            assert local.returncode == remote.returncode == 0, local.stderr + remote.stderr
            return local.stdout, remote.stdout

        for args in (
            ("runs", "--json"),
            ("runs", "--json", "--no-chain"),
            ("runs", "--json", "--status", "succeeded"),
            ("runs", "--json", "--status", "cancelled", "--no-chain"),
            ("runs", "--json", "--limit", "1", "--no-chain"),
            ("runs",),
            ("runs", "--no-chain"),
            ("usage", "--by", "job", "--json"),
            ("usage", "--by", "model", "--json"),
            ("usage", "--by", "flow"),
            ("show", chain["resumed"], "--json", "--no-chain"),
            ("show", chain["resumed"], "--no-chain"),
        ):
            local, remote = both(*args)
            assert remote == local, args
        lines = json.loads(both("runs", "--json")[1])["runs"]
        assert [(r["id"], r["chain"]["origin"]) for r in lines] == [
            (chain["resumed"], chain["killed"])
        ]
        assert lines[0]["tokens"] == chain["plain"]["tokens"]
        rows = json.loads(both("usage", "--by", "job", "--json")[1])["rows"]
        assert rows == chain["plain_usage"]
        # the API itself: one line with the chain by default, every run with chain=false
        with server.client() as http:
            chained = http.get("/runs").json()["runs"]
            alone = http.get("/runs", params={"chain": "false"}).json()["runs"]
        assert [r["id"] for r in chained] == [chain["resumed"]]
        assert chained[0]["chain"]["resumes"] == 1 and chained[0]["jobs_done"] == 3
        assert [r["id"] for r in alone] == [chain["resumed"], chain["killed"]]
        assert all("chain" not in r for r in alone)
    finally:
        server.stop()
