"""A reference-tool (zen) config runs as a flow; its mistakes are located like any other."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import corral


def test_zen_config_errors_have_positions(tmp_path: Path) -> None:
    config = tmp_path / "zen.json"
    config.write_text(
        '{"instances": [\n'
        '  {"name": "a", "prompt": "x"},\n'
        '  {"name": "a", "prompt": "y"},\n'
        '  {"nmae": "b", "prompt": "z"}\n'
        "]}\n"
    )
    result = corral("validate", str(config), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"{config}:3:12: instances[1].name: duplicate instance name 'a' (also instances[0]); "
        "names must be unique"
    )
    assert lines[1] == f"{config}:4:4: instances[2].nmae: unknown key 'nmae'; did you mean 'name'?"


def test_zen_config_runs_as_claude_jobs(tmp_path: Path) -> None:
    config = tmp_path / "zen.json"
    config.write_text(
        json.dumps(
            {
                "instances": [{"name": "one", "prompt": "hello"}, {"name": "two", "command": "/x"}],
                "budget": {"overall_cost_budget": 1.5, "enforcement_mode": "warn"},
            }
        )
    )
    plan = corral("plan", str(config), "--format", "json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    document = json.loads(plan.stdout)
    jobs = {j["name"]: j for j in document["jobs"]}
    assert set(jobs) == {"one", "two"}
    assert all(j["tool"] == "claude" for j in jobs.values())
