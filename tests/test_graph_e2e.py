"""Dependency graphs through the real command line: `corral run FLOW --json --no-store` and
`corral plan`, with real processes (the fake CLI, `FAKE` in a flow; see tests/helpers.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import FAKES, corral, write_flow

PY = sys.executable
FAKE_PY = FAKES / "fake_cli.py"


def run_json(
    flow: Path, *args: str, code: int | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run a flow with --json; the jobs by name (in summary order) and the whole summary."""
    result = corral("run", str(flow), "--json", "--no-store", *args, cwd=flow.parent)
    if code is not None:
        assert result.returncode == code, result.stderr
    summary = json.loads(result.stdout)
    return {job["name"]: job for job in summary["jobs"]}, summary


def stdout_of(job: dict[str, Any]) -> str:
    return (Path(job["log_dir"]) / "stdout.log").read_text()


# -- needs, if, skips, continue_on_error -----------------------------------------------------


def test_skips_propagate_with_reasons_and_conditions_run_what_they_ask(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          build: {run: FAKE exit 3}
          test: {run: FAKE echo never, needs: [build]}
          deploy: {run: FAKE echo never, needs: [test]}
          notify: {run: FAKE echo notified, needs: [deploy], if: failure()}
          cleanup: {run: FAKE echo cleaned, needs: [test], if: "${{ always() }}"}
          lint: {run: FAKE exit 1, continue_on_error: true}
          after_lint: {run: FAKE echo after-lint, needs: lint}
          strict: {run: FAKE echo never, needs: [lint], if: "jobs.lint.exit_code == 0"}
          loose: {run: FAKE echo loose, needs: [lint], if: "jobs.lint.status == 'failed'"}
        """,
    )
    jobs, summary = run_json(flow, code=1)
    assert summary["status"] == "failed"
    assert list(jobs) == [
        "build",
        "test",
        "deploy",
        "notify",
        "cleanup",
        "lint",
        "after_lint",
        "strict",
        "loose",
    ]
    assert jobs["build"]["status"] == "failed" and jobs["build"]["exit_code"] == 3
    assert jobs["test"]["status"] == "skipped"
    assert jobs["test"]["reason"] == "skipped: needs 'build' failed"
    assert jobs["deploy"]["status"] == "skipped"
    assert jobs["deploy"]["reason"] == "skipped: needs 'test' was skipped"
    assert jobs["test"]["attempts"] == 0 and jobs["test"]["exit_code"] is None
    # failure() looks at every job upstream: the failure was three levels up
    assert jobs["notify"]["status"] == "succeeded"
    assert stdout_of(jobs["notify"]) == "notified\n"
    assert jobs["cleanup"]["status"] == "succeeded"
    # continue_on_error: still shown as failed, but counts as a success downstream
    assert jobs["lint"]["status"] == "failed" and jobs["lint"]["exit_code"] == 1
    assert jobs["after_lint"]["status"] == "succeeded"
    assert jobs["strict"]["status"] == "skipped"
    assert jobs["strict"]["reason"] == "skipped: condition `jobs.lint.exit_code == 0` is false"
    assert jobs["loose"]["status"] == "succeeded"
    for name in ("build", "notify", "cleanup", "lint", "after_lint", "loose"):
        assert jobs[name]["reason"] is None, name


def test_an_allowed_failure_does_not_fail_the_run(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          lint: {run: FAKE exit 1, continue_on_error: true}
          report: {run: "FAKE echo lint={{ jobs.lint.status }}", needs: [lint]}
        """,
    )
    jobs, summary = run_json(flow, code=0)
    assert summary["status"] == "succeeded"
    assert jobs["lint"]["status"] == "failed"
    assert stdout_of(jobs["report"]) == "lint=failed\n"


def test_a_job_whose_needs_were_skipped_at_the_start_runs_once(tmp_path: Path) -> None:
    spans = tmp_path / "spans"
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          a: {{run: FAKE echo never, if: "cancelled()"}}
          b: {{run: FAKE span {spans} 0.3, needs: [a], if: always()}}
        """,
    )
    jobs, _ = run_json(flow, code=0)
    assert jobs["a"]["status"] == "skipped"
    assert jobs["b"]["status"] == "succeeded" and jobs["b"]["attempts"] == 1
    assert len(spans.read_text().splitlines()) == 1  # one process, not two


# -- retries ---------------------------------------------------------------------------------


def test_retries_with_a_flaky_command(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        f"""
        defaults: {{retry_delay: 0.05, retry_max_delay: 0.1}}
        jobs:
          flaky: {{run: FAKE flaky {tmp_path / "marker"} 75, retries: 2, retry_on: [75]}}
          refused: {{run: FAKE exit 3, retries: 2, retry_on: [75]}}
          exhausted: {{run: FAKE exit 4, retries: 1}}
          after: {{run: FAKE echo after, needs: [flaky]}}
        """,
    )
    jobs, _ = run_json(flow, code=1)
    assert jobs["flaky"]["status"] == "succeeded"
    assert jobs["flaky"]["attempts"] == 2
    assert jobs["flaky"]["exit_code"] == 0
    assert jobs["after"]["status"] == "succeeded"
    assert jobs["refused"]["status"] == "failed" and jobs["refused"]["attempts"] == 1
    assert jobs["exhausted"]["status"] == "failed" and jobs["exhausted"]["attempts"] == 2
    assert jobs["exhausted"]["exit_code"] == 4


def test_fail_fast_lets_a_retried_job_recover(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        f"""
        fail_fast: true
        jobs:
          flaky: {{run: FAKE flaky {tmp_path / "marker"} 1, retries: 1, retry_delay: 0.05}}
          other: {{run: FAKE slow 2 0.2}}
        """,
    )
    jobs, summary = run_json(flow, code=0)
    assert summary["status"] == "succeeded"
    assert jobs["flaky"]["attempts"] == 2 and jobs["flaky"]["status"] == "succeeded"
    assert jobs["other"]["status"] == "succeeded"


# -- outputs ---------------------------------------------------------------------------------


def test_outputs_from_regex_json_path_and_file_feed_later_jobs(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "build.py").write_text(
        "import json, pathlib\n"
        "print('building')\n"
        "print('version: 1.2.3')\n"
        "pathlib.Path('out/notes.md').write_text('release-notes')\n"
        "print(json.dumps({'scores': [{'value': 0.5}], 'ok': True, 'name': 'corral'}))\n"
    )
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          build:
            run: {PY} build.py
            outputs:
              version: {{regex: '^version: (\\S+)$'}}
              score: {{json_path: "scores[0].value"}}
              ok: {{json_path: "$.ok"}}
              name: {{json_path: name}}
              notes: {{file: out/notes.md}}
              missing: {{regex: '^nothing: (.*)$'}}
          publish:
            needs: [build]
            run: >-
              FAKE echo v={{{{ jobs.build.outputs.version }}}} s={{{{ jobs.build.outputs.score }}}}
              ok={{{{ jobs.build.outputs.ok }}}} n={{{{ jobs.build.outputs.name }}}}
              notes={{{{ jobs.build.outputs.notes }}}} m=[{{{{ jobs.build.outputs.missing }}}}]
          gate:
            {{run: FAKE echo gated, needs: [build], if: "jobs.build.outputs.version == '1.2.3'"}}
          closed: {{run: FAKE echo never, needs: [build], if: "jobs.build.outputs.ok == 'false'"}}
        """,
    )
    jobs, _ = run_json(flow, code=0)
    assert jobs["build"]["outputs"] == {
        "version": "1.2.3",
        "score": "0.5",
        "ok": "true",
        "name": "corral",
        "notes": "release-notes",
        "missing": "",
    }
    assert stdout_of(jobs["publish"]) == (
        "v=1.2.3 s=0.5 ok=true n=corral notes=release-notes m=[]\n"
    )
    assert jobs["gate"]["status"] == "succeeded"
    assert jobs["closed"]["status"] == "skipped"
    assert (
        jobs["closed"]["reason"] == "skipped: condition `jobs.build.outputs.ok == 'false'` is false"
    )


# -- matrix ----------------------------------------------------------------------------------


def test_matrix_expands_names_and_values(tmp_path: Path) -> None:
    # a list argv keeps "mac os" one argument
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          check:
            matrix:
              py: ["3.11", "3.12"]
              os: [linux, "mac os"]
            run: ["{PY}", "{FAKE_PY}", echo, "{{{{ matrix.py }}}}|{{{{ matrix.os }}}}"]
          summary:
            needs: [check]
            run: "FAKE echo {{{{ jobs['check-3.12-mac_os'].result }}}}"
        """,
    )
    jobs, _ = run_json(flow, code=0)
    names = ["check-3.11-linux", "check-3.11-mac_os", "check-3.12-linux", "check-3.12-mac_os"]
    assert list(jobs) == [*names, "summary"]
    values = [("3.11", "linux"), ("3.11", "mac os"), ("3.12", "linux"), ("3.12", "mac os")]
    for name, (py, os_name) in zip(names, values, strict=True):
        assert jobs[name]["status"] == "succeeded"
        assert stdout_of(jobs[name]) == f"{py}|{os_name}\n"  # the value, not the name part
    assert stdout_of(jobs["summary"]) == "3.12|mac os\n"
    plan = corral("plan", str(flow), "--format", "json", cwd=tmp_path)
    document = json.loads(plan.stdout)
    assert document["levels"] == [names, ["summary"]]
    by_name = {job["name"]: job for job in document["jobs"]}
    assert by_name["check-3.11-mac_os"]["group"] == "check"
    assert by_name["check-3.11-mac_os"]["matrix"] == {"py": "3.11", "os": "mac os"}
    assert by_name["summary"]["needs"] == names


def test_github_expressions_and_a_github_matrix_end_to_end(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          build:
            run: FAKE echo version 2.10
            outputs: {version: {regex: 'version (\\S+)'}}
          review:
            needs: [build]
            matrix:
              model: [a, b]
              include: [{model: c, extra: x}]
              exclude: [{model: b}]
            run: >-
              FAKE echo
              ${{ matrix.model }}-${{ matrix.extra }}-${{ needs.build.outputs.version }}
          flaky:
            matrix: {n: [1, 2]}
            run: "FAKE ${{ case(matrix.n == 1, 'exit 4', 'hang') }}"
          gate:
            needs: [review]
            if: "needs.review.result == 'SUCCESS' && jobs.build.outputs.version >= 2.1"
            run: FAKE echo gate ${{ join(needs.*.result, '+') }}
          after_flaky:
            needs: [flaky]
            if: ${{ always() && !cancelled() && needs.flaky.result == 'failure' }}
            run: FAKE echo flaky failed
        """,
    )
    jobs, summary = run_json(flow, code=1)
    assert [stdout_of(jobs[n]) for n in ("review-a", "review-c-x")] == ["a--2.10\n", "c-x-2.10\n"]
    assert "review-b" not in jobs
    assert stdout_of(jobs["gate"]) == "gate success\n"
    assert jobs["flaky-1"]["status"] == "failed"
    assert jobs["flaky-2"]["status"] == "cancelled"  # fail_fast: GitHub's default
    assert stdout_of(jobs["after_flaky"]) == "flaky failed\n"
    assert summary["status"] == "failed"


# -- --only and --from -----------------------------------------------------------------------

CHAIN = """
jobs:
  a: {run: FAKE echo a}
  b: {run: FAKE echo b, needs: [a]}
  c: {run: FAKE echo c, needs: [b]}
  d: {run: FAKE echo d, needs: [c]}
  e: {run: FAKE echo e, needs: [a]}
  x: {run: FAKE echo x}
"""


@pytest.mark.parametrize(
    ("args", "ran"),
    [
        (("--only", "c"), ["a", "b", "c"]),
        (("--from", "b"), ["b", "c", "d"]),
        (("--from", "b", "--only", "c"), ["b", "c"]),
        (("--only", "d", "--only", "e"), ["a", "b", "c", "d", "e"]),
    ],
)
def test_only_and_from_select_the_jobs_to_run(
    tmp_path: Path, args: tuple[str, ...], ran: list[str]
) -> None:
    flow = write_flow(tmp_path, CHAIN)
    jobs, _ = run_json(flow, *args, code=0)
    assert list(jobs) == ran
    assert all(job["status"] == "succeeded" for job in jobs.values())


def test_only_and_from_reject_unknown_names_with_a_suggestion(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, CHAIN)
    typo = corral("run", str(flow), "--no-store", "--only", "dd", cwd=tmp_path)
    assert typo.returncode == 2
    assert "--only dd: no such job (did you mean 'd'?)" in typo.stderr
    unknown = corral("plan", str(flow), "--from", "nothing", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "--from nothing: no such job" in unknown.stderr
    assert not (tmp_path / ".corral" / "runs").exists() or not any(
        (tmp_path / ".corral" / "runs").iterdir()
    )


# -- corral plan -----------------------------------------------------------------------------

PLAN_FLOW = """
name: review
jobs:
  analyze: {run: ./analyze.sh}
  lint: {run: ruff check ., retries: 2, priority: 5}
  review:
    matrix: {file: [a.py, b.py]}
    run: "./review.sh {{ matrix.file }}"
    needs: [analyze]
  report: {run: echo done, needs: [review, lint], if: always()}
"""
WIDE = {"COLUMNS": "200"}  # the tree wraps long lines to the terminal's width


def test_plan_tree_json_mermaid_and_dot(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, PLAN_FLOW)
    tree = corral("plan", str(flow), cwd=tmp_path, env=WIDE)
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0].startswith("flow review · 5 jobs · 3 levels")
    assert "level 1 · 2 in parallel" in lines[1]
    assert "│   └── lint  run: ruff check .  retries 2 · priority 5" in lines
    assert "├── level 2 · 2 in parallel" in lines
    assert "│   ├── review-a.py  run: ./review.sh {{ matrix.file }}  needs analyze" in lines
    assert "└── level 3" in lines
    assert "    └── report  run: echo done  needs review×2, lint · if always()" in lines

    document = json.loads(corral("plan", str(flow), "--format", "json", cwd=tmp_path).stdout)
    assert document["schema_version"] == 2
    assert document["name"] == "review"
    assert document["levels"] == [["analyze", "lint"], ["review-a.py", "review-b.py"], ["report"]]
    assert document["external_needs"] == []
    jobs = {job["name"]: job for job in document["jobs"]}
    assert list(jobs) == ["analyze", "lint", "review-a.py", "review-b.py", "report"]
    assert jobs["report"]["needs"] == ["review-a.py", "review-b.py", "lint"]
    assert jobs["report"]["if"] == "always()"
    assert jobs["lint"]["retries"] == 2 and jobs["lint"]["priority"] == 5
    assert jobs["review-a.py"]["group"] == "review"
    for name, job in jobs.items():  # `level` counts from 1, as the tree's "level 1"
        assert name in document["levels"][job["level"] - 1]

    mermaid = corral("plan", str(flow), "--format", "mermaid", cwd=tmp_path).stdout
    assert mermaid.startswith("flowchart TD")
    assert 'subgraph g_review["review"]' in mermaid
    assert "j_analyze --> j_review_a_py" in mermaid
    assert "j_lint --> j_report" in mermaid
    assert "if always()" in mermaid

    dot = corral("plan", str(flow), "--format", "dot", cwd=tmp_path).stdout
    assert dot.startswith('digraph "review" {')
    assert '"analyze" -> "review-a.py";' in dot
    assert '"review-b.py" -> "report";' in dot
    assert 'subgraph "cluster_review"' in dot
    assert dot.rstrip().endswith("}")


def test_plan_with_from_lists_needs_done_before(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, PLAN_FLOW)
    document = json.loads(
        corral("plan", str(flow), "--from", "review", "--format", "json", cwd=tmp_path).stdout
    )
    assert [job["name"] for job in document["jobs"]] == ["review-a.py", "review-b.py", "report"]
    assert sorted(document["external_needs"]) == ["analyze", "lint"]
    jobs = {job["name"]: job for job in document["jobs"]}
    assert jobs["review-a.py"]["external_needs"] == ["analyze"]
    assert jobs["review-a.py"]["needs"] == []
    assert jobs["report"]["external_needs"] == ["lint"]
    mermaid = corral("plan", str(flow), "--from", "review", "--format", "mermaid", cwd=tmp_path)
    assert 'j_analyze(["analyze (done)"])' in mermaid.stdout
    assert "j_analyze -.-> j_review_a_py" in mermaid.stdout
    tree = corral("plan", str(flow), "--from", "review", cwd=tmp_path, env=WIDE)
    assert "    └── report  run: echo done  needs review×2 · done before: lint · if always()" in (
        tree.stdout.splitlines()
    )


# -- graph errors ----------------------------------------------------------------------------


def where(flow: Path, key: str, text: str) -> str:
    """`line:column` (1-based) of `text` on the line of the flow that starts with `key`."""
    lines = flow.read_text().splitlines()
    row = next(i for i, line in enumerate(lines, 1) if line.lstrip().startswith(key))
    column = lines[row - 1].index(text) + 1
    return f"{row}:{column + (1 if text.startswith('[') else 0)}"


def test_a_cycle_is_named_with_its_location_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          a:
            run: FAKE span {marker} 0
            needs: [b]
          b:
            run: FAKE span {marker} 0
            needs: [a]
          free: {{run: FAKE span {marker} 0}}
          p: {{run: FAKE echo p, needs: [r]}}
          q: {{run: FAKE echo q, needs: [p]}}
          r: {{run: FAKE echo r, needs: [q]}}
        """,
    )
    for command in ("run", "plan", "validate"):
        extra = ("--no-store",) if command == "run" else ()
        result = corral(command, str(flow), *extra, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert f"{flow}:5:13: jobs.a.needs[0]: needs form a cycle: a -> b -> a" in lines[0]
        assert (
            f"{flow}:{where(flow, 'p:', '[r]')}: jobs.p.needs[0]: needs form a cycle: "
            in (lines[1])
        )
        assert lines[1].endswith("p -> r -> q -> p")
        assert lines[-1].endswith("2 problems; nothing was run")
    assert not marker.exists()


def test_an_unknown_need_suggests_the_right_name(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          build: {run: FAKE echo build}
          test: {run: FAKE echo test, needs: [build, biuld]}
          deploy: {run: FAKE echo deploy, needs: deploy}
        """,
    )
    result = corral("run", str(flow), "--no-store", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        f"corral: error: {flow}:{where(flow, 'test:', 'biuld')}: jobs.test.needs[1]: "
        "needs 'biuld', which is not a job (did you mean 'build'?)"
    )
    assert "jobs.deploy.needs" in lines[1] and "'deploy' needs itself" in lines[1]
