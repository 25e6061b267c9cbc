"""validate(): one message per field a tool cannot honour."""

from __future__ import annotations

from corral.config.schema import JobSpec
from corral.tools import all_tools, get_tool


def test_claude_accepts_every_agent_field() -> None:
    job = JobSpec(
        prompt="p", model="m", allowed_tools=["Read"], permission_mode="plan", max_turns=2,
        resume="other", extra_args=["-x"], home="/h", budget={"usd": 1},
    )  # fmt: skip
    assert get_tool("claude").validate(job) == []


def test_unsupported_fields_are_named() -> None:
    job = JobSpec(prompt="p", allowed_tools=["Read"], max_turns=4)
    assert get_tool("codex").validate(job) == [
        "codex does not support allowed_tools",
        "codex does not support max_turns",
    ]
    assert get_tool("gemini").validate(job) == [
        "gemini does not support allowed_tools",
        "gemini does not support max_turns",
    ]


def test_missing_prompt() -> None:
    assert get_tool("opencode").validate(JobSpec(model="m")) == ["opencode needs a prompt"]


def test_unknown_permission_mode_lists_the_choices() -> None:
    problems = get_tool("codex").validate(JobSpec(prompt="p", permission_mode="sometimes"))
    assert problems == [
        "codex does not support permission_mode 'sometimes' (use one of: acceptEdits,"
        " bypassPermissions, danger-full-access, default, plan, read-only, workspace-write, yolo)"
    ]


def test_unparseable_output_format_in_extra_args() -> None:
    problems = get_tool("claude").validate(
        JobSpec(prompt="p", extra_args=["--output-format", "text"])
    )
    assert problems == [
        "claude output format 'text' cannot be parsed (corral reads: json, stream-json);"
        " leave --output-format out of extra_args"
    ]


def test_generic_needs_a_command_and_takes_no_agent_fields() -> None:
    assert get_tool("generic").validate(JobSpec(prompt="p")) == [
        "generic does not support prompt",
        "generic needs a command: `run`, or the words after `--`",
    ]
    assert get_tool("generic").validate(JobSpec(run="ls")) == []


def test_every_tool_names_itself_in_its_messages() -> None:
    job = JobSpec(prompt="p", allowed_tools=["x"], max_turns=1, permission_mode="default")
    for name, tool in all_tools().items():
        for message in tool.validate(job):
            assert message.startswith(f"{name} ")
