"""Whole argv, env and parser of every built-in adapter, built from JobSpecs."""

from __future__ import annotations

from typing import Any

import pytest

from corral.config.schema import JobSpec
from corral.errors import ToolError
from corral.tools import Invocation, get_tool


def build(tool: str, resume: str | None = None, **fields: Any) -> Invocation:
    return get_tool(tool).build(JobSpec(**fields), executable=f"/bin/{tool}", resume_session=resume)


def test_claude_full() -> None:
    inv = build(
        "claude",
        resume="sess-1",
        prompt="/analyze-repository",
        model="claude-sonnet-4-5",
        allowed_tools="Read, Bash(git:*)",
        permission_mode="acceptEdits",
        max_turns=3,
        budget={"usd": "0.50", "tokens": 1000},
        extra_args=["--add-dir", "/src"],
    )
    assert inv.argv == (
        "/bin/claude", "-p", "/analyze-repository",
        "--output-format", "stream-json", "--verbose",
        "--model", "claude-sonnet-4-5",
        "--allowedTools", "Read,Bash(git:*)",
        "--permission-mode", "acceptEdits",
        "--max-turns", "3",
        "--resume", "sess-1",
        "--max-budget-usd", "0.50",
        "--add-dir", "/src",
    )  # fmt: skip
    assert inv.parser == "claude-stream-json"
    assert inv.env == {}


def test_claude_minimal_and_home() -> None:
    inv = build("claude", prompt="hello", home="/runs/1/home/a")
    assert inv.argv == ("/bin/claude", "-p", "hello", "--output-format", "stream-json", "--verbose")
    assert inv.env == {"HOME": "/runs/1/home/a"}


def test_claude_prompt_starting_with_dash_goes_last_after_double_dash() -> None:
    inv = build("claude", prompt="- fix it", model="m")
    assert inv.argv == (
        "/bin/claude", "-p", "--output-format", "stream-json", "--verbose",
        "--model", "m", "--", "- fix it",
    )  # fmt: skip


def test_claude_json_format_from_extra_args_switches_parser() -> None:
    inv = build("claude", prompt="hi", extra_args=["--output-format", "json"])
    assert inv.argv == ("/bin/claude", "-p", "hi", "--output-format", "json")
    assert inv.parser == "claude-json"


def test_codex_full() -> None:
    inv = build(
        "codex", prompt="write tests", model="gpt-5.5", permission_mode="acceptEdits",
        home="/h", extra_args=["-c", "model_reasoning_effort=low"],
    )  # fmt: skip
    assert inv.argv == (
        "/bin/codex", "exec", "--json", "--skip-git-repo-check",
        "--model", "gpt-5.5", "--sandbox", "workspace-write",
        "-c", "model_reasoning_effort=low", "write tests",
    )  # fmt: skip
    assert inv.env == {"HOME": "/h", "CODEX_HOME": "/h/.codex"}
    assert inv.parser == "codex-jsonl"


def test_codex_resume_puts_exec_flags_before_the_subcommand() -> None:
    inv = build("codex", resume="thread-9", prompt="-continue", permission_mode="yolo")
    assert inv.argv == (
        "/bin/codex", "exec", "--json", "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "resume", "thread-9", "--", "-continue",
    )  # fmt: skip


def test_gemini_full() -> None:
    inv = build(
        "gemini", resume="abc", prompt="summarize", model="gemini-2.5-pro",
        permission_mode="bypassPermissions", extra_args=["--include-directories", "lib"],
    )  # fmt: skip
    assert inv.argv == (
        "/bin/gemini", "-p", "summarize", "--output-format", "stream-json",
        "-m", "gemini-2.5-pro", "--approval-mode", "yolo", "--resume", "abc",
        "--include-directories", "lib",
    )  # fmt: skip
    assert inv.parser == "gemini-stream-json"


def test_gemini_dash_prompt_and_json_format() -> None:
    inv = build("gemini", prompt="-x", extra_args=["--output-format=json"])
    assert inv.argv == ("/bin/gemini", "--prompt=-x", "--output-format=json")
    assert inv.parser == "gemini-json"


def test_qwen() -> None:
    inv = build("qwen", prompt="fix", model="qwen3-coder-plus", permission_mode="acceptEdits")
    assert inv.argv == (
        "/bin/qwen", "--output-format", "stream-json",
        "-m", "qwen3-coder-plus", "--approval-mode", "auto-edit", "fix",
    )  # fmt: skip
    dashed = build("qwen", prompt="-v please", resume="s1", extra_args=["--max-session-turns", "3"])
    assert dashed.argv == (
        "/bin/qwen", "--output-format", "stream-json", "--resume", "s1",
        "--max-session-turns", "3", "--", "-v please",
    )  # fmt: skip
    assert inv.parser == "qwen-stream-json"


def test_opencode() -> None:
    inv = build(
        "opencode", resume="ses_1", prompt="go", model="anthropic/claude-sonnet-4-5", home="/h"
    )
    # an empty --title: OpenCode would otherwise spend an unreported model call on one
    assert inv.argv == (
        "/bin/opencode", "run", "--title", "--format", "json",
        "--model", "anthropic/claude-sonnet-4-5", "--session", "ses_1", "go",
    )  # fmt: skip
    assert inv.env["HOME"] == "/h"
    assert inv.env["XDG_DATA_HOME"] == "/h/.local/share"
    assert inv.parser == "opencode-json"


def test_opencode_keeps_a_users_title_and_maps_yolo_to_auto() -> None:
    inv = build("opencode", prompt="go", permission_mode="yolo", extra_args=["--title=Fix"])
    assert inv.argv == ("/bin/opencode", "run", "--format", "json", "--auto", "--title=Fix", "go")


def test_copilot() -> None:
    inv = build(
        "copilot", resume="sess-3", prompt="-fix it", model="gpt-5.5",
        permission_mode="bypassPermissions", home="/h", extra_args=["--add-dir", "lib"],
    )  # fmt: skip
    assert inv.argv == (
        "/bin/copilot", "--prompt=-fix it", "--output-format", "json", "--model", "gpt-5.5",
        "--allow-all-tools", "--resume", "sess-3", "--add-dir", "lib",
    )  # fmt: skip
    assert inv.env == {"HOME": "/h", "COPILOT_HOME": "/h/.copilot"}
    assert inv.parser == "copilot-jsonl"


@pytest.mark.parametrize("flag", ["--json", "--skip-git-repo-check"])
def test_codex_adds_its_flags_only_when_the_user_has_not(flag: str) -> None:
    # Codex exits 2 ("cannot be used multiple times") on a flag given twice
    inv = build("codex", prompt="go", extra_args=[flag, "-c", "x=1"])
    assert inv.argv.count(flag) == 1
    assert inv.argv[:2] == ("/bin/codex", "exec")
    assert inv.argv[-4:] == (flag, "-c", "x=1", "go")


def test_cursor_agent() -> None:
    inv = build(
        "cursor-agent", resume="chat-2", prompt="review", model="gpt-5", permission_mode="yolo"
    )
    assert inv.argv == (
        "/bin/cursor-agent", "-p", "--output-format", "stream-json", "--trust",
        "--model", "gpt-5", "--force", "--resume", "chat-2", "review",
    )  # fmt: skip
    assert inv.parser == "cursor-stream-json"


def test_generic_from_run_then_extra_args() -> None:
    assert build("generic", extra_args=["pytest", "-q"]).argv == ("pytest", "-q")
    assert build("generic", run="ruff check 'a b'").argv == ("ruff", "check", "a b")
    assert build("generic", run="echo $HOME", shell=True).argv == ("/bin/sh", "-c", "echo $HOME")
    assert build("generic", run=["a b", "c"], shell=True).argv == ("/bin/sh", "-c", "'a b' c")
    # `run` wins over agent fields a command job inherits from `defaults`
    assert build("generic", run=["ls", "-l"], extra_args=["--verbose"]).argv == ("ls", "-l")
    assert build("generic", run=["ls", "-l"]).parser is None  # plain text is not parsed
    with pytest.raises(ToolError, match="cannot split `run`"):
        build("generic", run="echo 'unbalanced")


def test_home_auto_must_be_resolved_by_the_runner() -> None:
    with pytest.raises(ValueError, match="auto"):
        build("claude", prompt="x", home="auto")


def test_unknown_permission_mode_at_build_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="gemini does not support permission_mode 'sometimes'"):
        build("gemini", prompt="x", permission_mode="sometimes")
