"""One convention each, the same in every command (issue 13, item 14; docs/running.md,
"Formats"): times are ISO 8601 UTC in every document and the same UTC time, to the second,
on screen; a run id's time is its start; plan levels count from 1; a status is one word
(`timed_out`) in JSON, tables and the stream alike."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers import corral

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
SHOWN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ")
FLOW = """\
jobs:
  quick: {run: "echo hi"}
  slow: {run: "sleep 5", timeout: 0.5s}
  after: {needs: [quick], run: "echo after"}
"""
# far from UTC: a local time anywhere would show
ENV = {"TZ": "Pacific/Kiritimati"}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """The flow run once with `--output prefixed --json`: (folder, summary, stream)."""
    folder = tmp_path_factory.mktemp("formats")
    (folder / "flow.yaml").write_text(FLOW)
    done = corral("run", "flow.yaml", "--json", "--output", "prefixed", cwd=folder, env=ENV)
    assert done.returncode == 1, done.stderr
    return folder, json.loads(done.stdout), done.stderr


def _json(folder: Path, *args: str) -> Any:
    done = corral(*args, cwd=folder, env=ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _times(value: Any) -> list[str]:
    """Every `*_at` and `ts` value anywhere in a document."""
    if isinstance(value, dict):
        found = [v for k, v in value.items() if (k.endswith("_at") or k == "ts") and v is not None]
        return found + [t for v in value.values() for t in _times(v)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v)]
    return []


def test_every_document_writes_times_as_iso_8601_utc(
    ran: tuple[Path, dict[str, Any], str],
) -> None:
    folder, summary, _ = ran
    run_id = summary["run_id"]
    documents = {
        "run --json": summary,
        "runs --json": _json(folder, "runs", "--json"),
        "show --json": _json(folder, "show", run_id, "--json"),
        "export json": _json(folder, "export", run_id),
        "export jsonl": [
            json.loads(line)
            for line in corral(
                "export", run_id, "--format", "jsonl", cwd=folder
            ).stdout.splitlines()
        ],
    }
    for name, document in documents.items():
        times = _times(document)
        assert times, name
        assert all(isinstance(t, str) and ISO.fullmatch(t) for t in times), (name, times)
    rows = list(
        csv.DictReader(io.StringIO(corral("export", run_id, "--format", "csv", cwd=folder).stdout))
    )
    assert rows and all(
        ISO.fullmatch(r["started_at"]) and ISO.fullmatch(r["ended_at"]) for r in rows
    )
    # the same instant everywhere
    shown = documents["show --json"]["run"]["started_at"]
    assert summary["started_at"] == shown == documents["runs --json"]["runs"][0]["started_at"]


def _durations(value: Any) -> list[Any]:
    """Every `duration_s` value anywhere in a document."""
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == "duration_s" and v is not None]
        return found + [d for v in value.values() for d in _durations(v)]
    if isinstance(value, list):
        return [d for v in value for d in _durations(v)]
    return []


def test_every_document_writes_durations_to_the_millisecond(
    ran: tuple[Path, dict[str, Any], str],
) -> None:
    """`1.788`, never `0.36040806770324707`: one convention in the summary, the history's
    documents and the CSV (the event log keeps each event as it was)."""
    folder, summary, _ = ran
    run_id = summary["run_id"]
    documents = {
        "run --json": summary,
        "runs --json": _json(folder, "runs", "--json"),
        "show --json": _json(folder, "show", run_id, "--json"),
        "export json": {k: v for k, v in _json(folder, "export", run_id).items() if k != "events"},
    }
    for name, document in documents.items():
        durations = _durations(document)
        assert durations, name
        assert all(round(d, 3) == d for d in durations), (name, durations)
    rows = list(
        csv.DictReader(io.StringIO(corral("export", run_id, "--format", "csv", cwd=folder).stdout))
    )
    assert rows and all(re.fullmatch(r"\d+(\.\d{1,3})?", r["duration_s"]) for r in rows), rows


def test_screens_show_the_same_utc_time_and_the_run_id_agrees(
    ran: tuple[Path, dict[str, Any], str],
) -> None:
    folder, summary, _ = ran
    run_id = summary["run_id"]
    started = datetime.fromisoformat(summary["started_at"]).astimezone(UTC)
    second = started.strftime("%Y-%m-%d %H:%M:%SZ")
    assert run_id.startswith(started.strftime("%Y%m%d-%H%M%S-"))  # the id's time is the start
    table = corral("runs", cwd=folder, env=ENV).stdout
    assert second in table.splitlines()[1] and SHOWN.search(table)
    show = corral("show", run_id, cwd=folder, env=ENV).stdout
    assert f"started:  {second}" in show.splitlines()


def test_plan_levels_count_from_one_everywhere(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    tree = corral("plan", "flow.yaml", cwd=tmp_path).stdout
    document = _json(tmp_path, "plan", "flow.yaml", "--format", "json")
    validated = corral("validate", "flow.yaml", cwd=tmp_path).stdout
    assert "2 levels" in tree.splitlines()[0] and "(3 jobs, 2 levels)" in validated
    assert re.findall(r"level (\d)", tree) == ["1", "2"]
    levels = {job["name"]: job["level"] for job in document["jobs"]}
    assert levels == {"quick": 1, "slow": 1, "after": 2}
    for name, level in levels.items():
        assert name in document["levels"][level - 1]
        assert re.search(rf"level {level}\b(?:(?!level).)*\b{name}\b", tree, re.DOTALL)


def test_a_status_is_one_word_in_json_tables_and_the_stream(
    ran: tuple[Path, dict[str, Any], str],
) -> None:
    folder, summary, stream = ran
    run_id = summary["run_id"]
    assert {j["name"]: j["status"] for j in summary["jobs"]}["slow"] == "timed_out"
    assert "⏱ timed_out in" in stream  # the stream's line for the job
    table = stream[stream.index("job ") :]  # the summary table (stderr under --json)
    assert re.search(r"^slow\s+timed_out\s", table, re.MULTILINE), table
    show = corral("show", run_id, cwd=folder, env=ENV).stdout
    assert re.search(r"^ slow\s+timed_out\s", show, re.MULTILINE), show
    # (a note may say "timed out after 0.5s": a sentence, not the status word)
    shown = _json(folder, "show", run_id, "--json")
    assert {j["name"]: j["status"] for j in shown["jobs"]}["slow"] == "timed_out"
