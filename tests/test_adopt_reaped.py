"""A job its live supervisor reaped a moment ago, read by a resume before its exit is on
record (durability.py found it once: the resume ran that finished job a second time).
The resume waits for the record instead. No clock: the waits are counted."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from corral.app import adopt
from corral.execute.supervised import JobRecord


def _write(root: Path, *entries: dict[str, object]) -> None:
    with open(root / "supervisor.jsonl", "ab") as handle:
        for entry in entries:
            handle.write(orjson.dumps(entry) + b"\n")


def test_the_exit_written_while_the_resume_waits_is_the_one_it_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"e": "start", "key": "j#1", "pid": 123, "at": 10.0})
    monkeypatch.setattr(adopt, "supervisor_alive", lambda root: 99)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:  # the supervisor's exit writer gets to it
            _write(tmp_path, {"e": "exit", "key": "j#1", "pid": 123, "code": 0, "at": 11.0})

    job = JobRecord("j#1", 123, 10.0)
    found = adopt.recorded_exit(tmp_path, job, sleep=sleep, clock=lambda: 0.0)
    assert found.exit is not None and found.exit.code == 0 and found.ended_at == 11.0
    assert found.started_at == 10.0 and len(naps) == 3


def test_a_supervisor_gone_without_the_record_or_the_wait_over_leaves_the_job_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"e": "start", "key": "j#1", "pid": 123, "at": 10.0})
    job = JobRecord("j#1", 123, 10.0)
    monkeypatch.setattr(adopt, "supervisor_alive", lambda root: None)
    assert adopt.recorded_exit(tmp_path, job, sleep=pytest.fail) is job
    monkeypatch.setattr(adopt, "supervisor_alive", lambda root: 99)
    ticks = iter([0.0, 1.0, 6.0])
    naps: list[float] = []
    assert adopt.recorded_exit(tmp_path, job, sleep=naps.append, clock=lambda: next(ticks)) is job
    assert len(naps) == 1
