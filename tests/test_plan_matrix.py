"""Matrix: GitHub's include/exclude (compared with the examples of GitHub's documentation),
validation with locations, and `max_parallel` / `fail_fast` of each matrix when it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corral.events.types import JobWaiting
from corral.models import JobStatus
from corral.plan import matrix_options
from corral.plan.matrix import combinations, expand
from corral.testing import fail, ok
from helpers import problems_of
from test_scheduler import execute, plan_of

DOCS = json.loads((Path(__file__).parent / "data" / "matrix" / "github-docs.json").read_text())


@pytest.mark.parametrize("case", DOCS["cases"], ids=[c["name"] for c in DOCS["cases"]])
def test_combinations_match_githubs_documented_examples(case: dict[str, Any]) -> None:
    found = [item.values for item in combinations(case["matrix"])]
    assert found == case["combinations"]
    # key order inside a combination is not part of GitHub's answer; values and order are
    plan = plan_of({"job": {"matrix": case["matrix"]}})
    assert [dict(job.matrix or {}) for job in plan.jobs.values()] == case["combinations"]


def test_names_of_added_combinations_come_from_their_own_values() -> None:
    matrix = DOCS["cases"][1]["matrix"]  # fruit x animal, with include
    assert [e.name for e in expand("f", matrix, set())] == [
        "f-apple-cat",
        "f-apple-dog",
        "f-pear-cat",
        "f-pear-dog",
        "f-banana",
        "f-banana-cat",
    ]
    only = {"include": [{"site": "production", "dc": {"x": 1}}, {"site": "staging"}]}
    assert [e.name for e in expand("d", only, set())] == ["d-production-1", "d-staging"]


def test_matrix_values_are_compared_with_their_type() -> None:
    matrix = {"n": [1, "1", True], "exclude": [{"n": 1}]}
    assert [item.values for item in combinations(matrix)] == [{"n": "1"}, {"n": True}]


def test_matrix_keys_added_by_include_may_be_read() -> None:
    plan = plan_of(
        {
            "t": {
                "matrix": {"os": ["a", "b"], "include": [{"os": "a", "extra": "x"}]},
                "run": "echo ${{ matrix.extra }} {{ matrix.os }}",
                "if": "matrix.extra != 'y' && matrix.OS != ''",
            }
        }
    )
    assert [job.matrix for job in plan.jobs.values()] == [{"os": "a", "extra": "x"}, {"os": "b"}]


FLOW = """\
jobs:
  t:
    run: x
    matrix:
      os: [linux]
      py: "3.12"
      exclude:
        - os: linux
          python: "3.11"
      include: [{}]
      max_parallel: 0
      fail_fast: "no"
      max-parallel: 2
  u:
    run: y
    matrix:
      os: [a]
      exclude: [{os: a}]
  v:
    run: z
    matrix:
      os: [a, b]
      exlude: [{os: a}]
      max_paralel: 2
"""


def test_validate_reports_every_matrix_mistake_where_it_is() -> None:
    assert problems_of(FLOW) == [
        "flow.yaml:6:11: jobs.t.matrix.py: matrix axis 'py' must be a list of values (corral "
        "does not evaluate `${{ }}` in a matrix)",
        "flow.yaml:13:7: jobs.t.matrix.max-parallel: write `max_parallel` (corral spells it "
        "so, inside `matrix:`; GitHub's `strategy:` is not used)",
        "flow.yaml:9:11: jobs.t.matrix.exclude[0].python: exclude names 'python', which is not "
        "an axis of the matrix (axes: os, py)",
        "flow.yaml:10:17: jobs.t.matrix.include[0]: each `include` entry must be a mapping "
        "such as {os: linux}",
        "flow.yaml:11:21: jobs.t.matrix.max_parallel: max_parallel must be a whole number, 1 "
        "or more",
        "flow.yaml:12:18: jobs.t.matrix.fail_fast: fail_fast must be true or false",
        "flow.yaml:17:7: jobs.u.matrix: exclude removes every combination: the job would never run",
        "flow.yaml:23:7: jobs.v.matrix.exlude: unknown matrix key 'exlude' (did you mean "
        "'exclude'?)",
        "flow.yaml:24:7: jobs.v.matrix.max_paralel: unknown matrix key 'max_paralel' (did you "
        "mean 'max_parallel'?)",
        "9 problems; nothing was run",
    ]


def test_githubs_strategy_key_points_at_the_matrix() -> None:
    flow = "jobs:\n  a:\n    run: x\n    strategy:\n      matrix: {os: [a]}\n"
    assert problems_of(flow) == [
        "flow.yaml:4:5: jobs.a.strategy: unknown key 'strategy'; corral has no `strategy:`: "
        "give the job a `matrix:`, with `max_parallel` and `fail_fast` inside it"
    ]


def test_options_default_like_github() -> None:
    assert matrix_options({"a": [1]}).fail_fast is True
    assert matrix_options({"a": [1]}).max_parallel is None
    assert matrix_options({"a": [1], "fail_fast": False, "max_parallel": 2}).fail_fast is False
    assert matrix_options({"a": [1], "max_parallel": 2}).max_parallel == 2
    assert matrix_options(None).fail_fast is True


def test_max_parallel_caps_one_matrix_not_the_others() -> None:
    plan = plan_of(
        {
            "m": {"matrix": {"n": [1, 2, 3, 4, 5], "max_parallel": 2}},
            "free": {"matrix": {"n": [1, 2]}},
        }
    )
    run = execute(plan, default=ok(1.0), concurrency=10)
    assert all(run.status(name) is JobStatus.SUCCEEDED for name in plan.jobs)
    starts = sorted(a.started for a in run.executor.attempts if a.job.startswith("m-"))
    assert starts == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert {a.started for a in run.executor.attempts if a.job.startswith("free-")} == {0.0}
    waits = [e.reason for e in run.of(JobWaiting) if isinstance(e, JobWaiting)]
    assert "waiting: m runs at most 2 at once (max_parallel)" in waits


def test_fail_fast_cancels_the_other_expansions_of_that_matrix_only() -> None:
    plan = plan_of(
        {
            "m": {"matrix": {"n": [1, 2, 3, 4]}, "priority": 1},
            "other": {},
            "after": {"needs": ["m"]},
            "report": {"needs": ["m"], "if": "always()"},
            "on_failure": {"needs": ["m"], "if": "failure() && needs.m.result == 'failure'"},
            "on_cancel": {"needs": ["m"], "if": "cancelled()"},
        }
    )
    script = {"m-1": [ok(1)], "m-2": [fail(1, duration=2)], "m-3": [ok(5)], "m-4": [ok(1)]}
    run = execute(plan, script, concurrency=3, default=ok(1))
    assert run.status("m-1") is JobStatus.SUCCEEDED
    assert run.status("m-2") is JobStatus.FAILED
    assert run.status("m-3") is JobStatus.CANCELLED  # running: stopped
    assert run.error("m-3") == "fail-fast: 'm-2' failed"
    assert run.status("m-4") is JobStatus.SUCCEEDED  # it had finished before m-2 failed
    assert run.status("other") is JobStatus.SUCCEEDED  # not part of the matrix
    assert run.reason("after") == "skipped: needs 'm-2' failed"
    assert run.status("report") is JobStatus.SUCCEEDED
    assert run.status("on_failure") is JobStatus.SUCCEEDED
    assert run.status("on_cancel") is JobStatus.SKIPPED  # the run was not cancelled
    assert run.scheduler.cancelled is None


def test_fail_fast_cancels_expansions_not_started_yet() -> None:
    plan = plan_of({"m": {"matrix": {"n": [1, 2, 3]}}})
    run = execute(plan, {"m-1": [fail(1)]}, concurrency=1, default=ok(1))
    assert [run.status(n) for n in ("m-1", "m-2", "m-3")] == [
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.CANCELLED,
    ]
    assert run.reason("m-2") == "not started: fail-fast: 'm-1' failed"
    assert run.executor.started() == ["m-1"]


@pytest.mark.parametrize(
    ("options", "continue_on_error"), [({"fail_fast": False}, False), ({}, True)]
)
def test_no_fail_fast_when_off_or_when_the_failure_is_allowed(
    options: dict[str, Any], continue_on_error: bool
) -> None:
    plan = plan_of(
        {"m": {"matrix": {"n": [1, 2, 3], **options}, "continue_on_error": continue_on_error}}
    )
    run = execute(plan, {"m-1": [fail(1)]}, concurrency=1, default=ok(1))
    assert [run.status(n) for n in ("m-1", "m-2", "m-3")] == [
        JobStatus.FAILED,
        JobStatus.SUCCEEDED,
        JobStatus.SUCCEEDED,
    ]
