"""Status functions on real plans: each case of tests/data/conditions/status-functions.json
(GitHub's documented behaviour) is built into a plan and run by the real Scheduler on the
fake executor, and every job must end as GitHub would end it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corral.models import JobStatus
from corral.testing import Step, fail, hang, ok, timed_out
from test_scheduler import Cancel, execute, plan_of

DATA = json.loads(
    (Path(__file__).parent / "data" / "conditions" / "status-functions.json").read_text()
)
STEPS = {"ok": ok, "fail": fail, "timeout": timed_out, "hang": hang}


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["name"] for c in DATA["cases"]])
def test_status_functions_end_every_job_as_github_does(case: dict[str, Any]) -> None:
    plan = plan_of(case["jobs"])
    script: dict[str, list[Step]] = {
        name: [STEPS[what]()] for name, what in case.get("script", {}).items()
    }
    cancels = [Cancel(case["cancel_at"])] if case.get("cancel_at") is not None else []
    run = execute(plan, script, concurrency=8, cancels=cancels)
    ended = {name: run.status(name).value for name in case["expect"]}
    assert ended == case["expect"], {n: run.reason(n) for n in plan.jobs}
    assert set(case["expect"]) == set(plan.jobs)  # every job of the case is checked
    assert all(run.status(n) is not JobStatus.WAITING for n in plan.jobs)
