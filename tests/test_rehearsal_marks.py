"""Rehearsal runs are marked in the history (issue 13, item 11): `runs` and `show` say so,
their JSON carries `"rehearsal"`, `usage` leaves their simulated spend out unless
`--include-rehearsals`, and the server does the same (its runs filter, its documents)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from helpers import corral
from serverkit import LiveServer, start_server

DATA = Path(__file__).parent / "data" / "agents"
FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"
FLOW = """\
jobs:
  review: {tool: claude, prompt: "review", env: {FAKE_AGENT_SCRIPT: claude_tool}}
"""
ENV = {"FAKE_AGENT_DIR": str(DATA), "CORRAL_CLAUDE_BIN": str(FAKE_AGENT)}
CLAUDE_COST = Decimal("0.10")  # what the recording reports, rounded as the table shows it


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A folder whose history holds one rehearsal and one real run of the same flow
    (the fake CLI reports the same cost both times): (folder, rehearsal id, real id)."""
    folder = tmp_path_factory.mktemp("marks")
    (folder / "flow.yaml").write_text(FLOW)
    ids = []
    for command in (["rehearse", "flow.yaml"], ["run", "flow.yaml", "--rehearse"],
                    ["run", "flow.yaml"]):  # fmt: skip
        done = corral(*command, "--json", cwd=folder, env=ENV)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        ids.append(summary["run_id"])
        assert summary["rehearsal"] is (command != ["run", "flow.yaml"])
        # the run's last lines say so too (its log path, last, may stand on its own line)
        footer = done.stderr[done.stderr.rindex(f"run {summary['run_id']} ") :]
        said = "rehearsal: simulated provider, nothing billed" in footer
        assert said is (command != ["run", "flow.yaml"])
    return folder, ids[0], ids[2]


def _json(folder: Path, *args: str) -> Any:
    done = corral(*args, "--json", cwd=folder)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_runs_and_show_mark_a_rehearsal(history: tuple[Path, str, str]) -> None:
    folder, rehearsal, real = history
    marks = {r["id"]: r["rehearsal"] for r in _json(folder, "runs")["runs"]}
    assert list(marks.values()).count(True) == 2 and marks[real] is False
    assert marks[rehearsal] is True
    only = [r["id"] for r in _json(folder, "runs", "--rehearsal")["runs"]]
    assert len(only) == 2 and rehearsal in only and real not in only
    assert [r["id"] for r in _json(folder, "runs", "--no-rehearsal")["runs"]] == [real]
    table = corral("runs", cwd=folder).stdout
    lines = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "flow (rehearsal)" in lines[rehearsal] and "(rehearsal)" not in lines[real]
    shown = corral("show", rehearsal, cwd=folder).stdout
    assert "kind:     rehearsal: simulated provider, nothing billed" in shown.splitlines()
    assert "rehearsal" not in corral("show", real, cwd=folder).stdout
    assert _json(folder, "show", rehearsal)["run"]["rehearsal"] is True
    assert _json(folder, "show", real)["run"]["rehearsal"] is False


def _reported(rows: list[dict[str, Any]]) -> tuple[int, Decimal]:
    return sum(r["attempts"] for r in rows), sum(
        (Decimal(r["cost"]["reported_usd"]) for r in rows), Decimal(0)
    )


def test_usage_leaves_rehearsals_out_unless_asked(history: tuple[Path, str, str]) -> None:
    folder, _, _ = history
    tries, usd = _reported(_json(folder, "usage")["rows"])
    assert tries == 1  # the real run only
    everything = _reported(_json(folder, "usage", "--include-rehearsals")["rows"])
    assert everything == (3, usd * 3)
    assert round(usd, 2) == CLAUDE_COST
    text = corral("usage", "--include-rehearsals", cwd=folder).stdout
    assert text.splitlines()[1].split()[1] == "3"
    csv = corral("usage", "--csv", cwd=folder).stdout.splitlines()
    assert csv[1].split(",")[1] == "1"


@pytest.fixture(scope="module")
def server(history: tuple[Path, str, str]) -> Iterator[LiveServer]:
    live = start_server(history[0])
    yield live
    assert live.stop() == 0


def test_the_server_marks_filters_and_leaves_them_out_of_usage(
    server: LiveServer, history: tuple[Path, str, str]
) -> None:
    folder, rehearsal, real = history
    with server.client() as http:
        every = http.get("/runs").json()["runs"]
        assert {r["id"]: r["rehearsal"] for r in every}[rehearsal] is True
        only = http.get("/runs", params={"rehearsal": "true"}).json()["runs"]
        assert len(only) == 2 and all(r["rehearsal"] for r in only)
        real_ones = http.get("/runs", params={"rehearsal": "false"}).json()["runs"]
        assert [r["id"] for r in real_ones] == [real]
        assert http.get(f"/runs/{rehearsal}").json()["rehearsal"] is True
        assert http.get(f"/runs/{real}").json()["rehearsal"] is False
        assert _reported(http.get("/usage").json()["rows"])[0] == 1
        wide = http.get("/usage", params={"include_rehearsals": "true"}).json()["rows"]
        assert _reported(wide)[0] == 3
        assert http.get("/usage.csv").text.splitlines()[1].split(",")[1] == "1"
    # the CLI against the server: the same marks and the same default
    remote = corral("usage", "--server", server.url, "--json", cwd=folder,
                    env={"CORRAL_TOKEN": server.token})  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert _reported(json.loads(remote.stdout)["rows"])[0] == 1
    remote = corral("runs", "--server", server.url, cwd=folder, env={"CORRAL_TOKEN": server.token})
    assert f"{rehearsal}" in remote.stdout and "flow (rehearsal)" in remote.stdout
    remote = corral("runs", "--server", server.url, "--no-rehearsal", "--json", cwd=folder,
                    env={"CORRAL_TOKEN": server.token})  # fmt: skip
    assert [r["id"] for r in json.loads(remote.stdout)["runs"]] == [real]
