"""Import of zen (netra-zen) JSON configs: mapping, notes and every problem at once."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from corral.config.legacy import convert, is_legacy
from corral.config.schema import FlowSpec
from corral.errors import FlowError, Problem


def zen_config(data_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((data_dir / "tools" / "zen_config.json").read_text())
    return loaded


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(FlowError) as caught:
        convert(data, source="zen.json")
    return [str(p) for p in caught.value.problems]


def test_is_legacy() -> None:
    assert is_legacy({"instances": []})
    assert not is_legacy({"jobs": {}, "instances": []})
    assert not is_legacy({"jobs": {}})
    assert not is_legacy(["instances"])


def test_realistic_config(data_dir: Path) -> None:
    notes: list[str] = []
    flow = convert(zen_config(data_dir), source="zen.json", notes=notes)
    assert flow == {
        "version": 1,
        "concurrency": 3,
        "budget": {"tokens": 50000, "on_exceed": "stop"},
        "jobs": {
            "analyzer-1": {
                "tool": "claude",
                "prompt": "/compact; Set context: code analysis mode; /analyze-code src/",
                "permission_mode": "acceptEdits",
                "allowed_tools": ["Read", "Grep", "Glob", "Task"],
                "extra_args": ["--session-id", "3f9f74a6-6b7c-4a3e-9e1d-2f1f0a9b8c7d"],
                # the smaller of max_tokens_per_command and the '/analyze-code' budget
                "budget": {"tokens": 4000, "usd": "0.5", "on_exceed": "stop"},
            },
            "security-review": {
                "tool": "claude",
                "prompt": "What are the security vulnerabilities in this codebase?",
                "permission_mode": "bypassPermissions",
                "budget": {"tokens": 8000, "on_exceed": "stop"},
            },
            "generate": {
                "tool": "claude",
                "prompt": "/generate report; include findings from both analyzers",
                "permission_mode": "bypassPermissions",
                "budget": {"tokens": 12000, "on_exceed": "stop"},
            },
        },
    }
    spec = FlowSpec.model_validate(flow)
    assert spec.jobs["analyzer-1"].budget is not None
    assert spec.jobs["analyzer-1"].budget.usd == Decimal("0.5")
    assert spec.jobs["analyzer-1"].allowed_tools == ["Read", "Grep", "Glob", "Task"]
    assert notes == [
        "instances[0]: pre_commands go ahead of the command in the same prompt",
        "instances[1].session_id: 'security-session-1' is not a UUID, which Claude Code"
        " requires for --session-id; dropped",
        "instances[2].output_format: 'json' ignored; corral reads stream-json",
        "instances[1]: 'security review' becomes job 'security-review'",
        "instances[2]: '/generate report; include findings from both analyzers'"
        " becomes job 'generate'",
        "budget: command budget '/unused' matches no instance; ignored",
        "max_tokens_per_command: zen used it as a pre-start estimate; corral enforces it"
        " as the job's token budget",
    ]


def test_duplicate_names_are_all_reported() -> None:
    data = {
        "instances": [
            {"name": "x", "command": "/a"},
            {"name": "y", "command": "/b"},
            {"command": "/help"},
            {"name": "x", "command": "/c"},
            {"command": "/help"},
        ]
    }
    assert problems(data) == [
        "zen.json: instances[3].name: duplicate instance name 'x' (also instances[0]);"
        " names must be unique",
        "zen.json: instances[4].name: duplicate instance name '/help' (derived from the command;"
        " give each instance a `name`) (also instances[2]); names must be unique",
    ]
    error = FlowError([Problem("zen.json", None, None, "instances[3].name", "m")])
    assert error.lines() == ["zen.json: instances[3].name: m"]


def test_unknown_keys_get_did_you_mean_and_bad_values_are_collected() -> None:
    data = {
        "instance": [],
        "instances": [
            {"comand": "/x", "prompt": "p", "max_tokens_per_command": "lots"},
            {"description": "nothing to run"},
            "not a mapping",
        ],
        "budget": {"overal_budget": 5, "enforcement_mode": "stop", "command_budgets": {"/x": -1}},
    }
    assert problems(data) == [
        "zen.json: instance: unknown key 'instance'; did you mean 'instances'?",
        "zen.json: instances[0].comand: unknown key 'comand'; did you mean 'command'?",
        "zen.json: instances[0].max_tokens_per_command:"
        " must be a whole number of tokens, got 'lots'",
        "zen.json: instances[1]: give `command` (a slash command) or `prompt`",
        "zen.json: instances[2]: must be a mapping with `command` or `prompt`",
        "zen.json: budget.overal_budget: unknown key 'overal_budget';"
        " did you mean 'overall_budget'?",
        "zen.json: budget.enforcement_mode: must be 'warn' or 'block', got 'stop'",
        "zen.json: budget.command_budgets./x: must be a whole number of tokens, got -1",
    ]


def test_budget_mapping_warn_cost_and_shared_command_budgets() -> None:
    notes: list[str] = []
    flow = convert(
        {
            "instances": [
                {"name": "a", "command": "/review src/a"},
                {"name": "b", "command": "/review src/b"},
                {"name": "c", "prompt": "summarize the repo"},
            ],
            "budget": {
                "overall_budget": 100000,
                "overall_cost_budget": 2.5,
                "budget_type": "cost",
                "command_cost_budgets": {"/review": 0.1, "summarize the repo": 1},
            },
        },
        source="zen.json",
        notes=notes,
    )
    assert flow["budget"] == {"usd": "2.5", "on_exceed": "warn"}
    assert flow["jobs"]["a"]["budget"] == {"usd": "0.1", "on_exceed": "warn"}
    assert flow["jobs"]["b"]["budget"] == {"usd": "0.1", "on_exceed": "warn"}
    assert flow["jobs"]["c"]["budget"] == {"usd": "1", "on_exceed": "warn"}
    assert "budget.overall_budget: ignored, as in zen: overall_cost_budget wins" in notes
    assert (
        "budget: command budget '/review' was shared by 2 instances in zen;"
        " corral gives each of those jobs the whole limit"
    ) in notes
    FlowSpec.model_validate(flow)


def test_minimal_config_has_no_budget() -> None:
    flow = convert({"instances": [{"command": "/analyze-repository"}]}, source="zen.json")
    assert flow == {
        "version": 1,
        "concurrency": 1,
        "jobs": {
            "analyze-repository": {
                "tool": "claude",
                "prompt": "/analyze-repository",
                "permission_mode": "bypassPermissions",
            }
        },
    }
    FlowSpec.model_validate(flow)


def test_long_prompt_without_name() -> None:
    text = "Please look at every file and tell me what is wrong with it"
    flow = convert({"instances": [{"prompt": text}]}, source="zen.json")
    (name,) = flow["jobs"]
    assert name == "Please-look-at-every-file-and"
    FlowSpec.model_validate(flow)
