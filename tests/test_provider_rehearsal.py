"""The tool adapters' rehearsal hooks: the settings files, env vars and flags that point
each CLI at the simulated provider (`rehearsal_for`, as `corral rehearse` uses them)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from corral.config.schema import JobSpec
from corral.errors import ToolError
from corral.tools import Rehearsal, all_tools, get_tool, rehearsal_for

URL = "http://127.0.0.1:4242/s/demo"


def prepare(tool: str, base_url: str, home: Path, **job: object) -> Rehearsal:
    return rehearsal_for(get_tool(tool), JobSpec.model_validate(job), base_url=base_url, home=home)


def test_claude_env(tmp_path: Path) -> None:
    rehearsal = prepare("claude", URL + "/", tmp_path / "home")
    assert rehearsal == Rehearsal(
        env={
            "HOME": str(tmp_path / "home"),
            "TMPDIR": str(tmp_path / "home" / "tmp"),
            "ANTHROPIC_BASE_URL": URL,
            "ANTHROPIC_API_KEY": "dummy",
            "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        },
        extra_args=(),
    )
    assert (tmp_path / "home" / "tmp").is_dir()
    again = rehearsal_for(
        get_tool("claude"), JobSpec(), base_url=URL, home=tmp_path / "h2", max_retries=3
    )
    assert again.env["CLAUDE_CODE_MAX_RETRIES"] == "3"


def test_codex_flags_are_valid_toml_overrides(tmp_path: Path) -> None:
    rehearsal = rehearsal_for(
        get_tool("codex"), JobSpec(), base_url=URL, home=tmp_path, max_retries=2
    )
    # the adapter passes --skip-git-repo-check itself: the rehearsal does not repeat it
    assert "--skip-git-repo-check" not in rehearsal.extra_args
    pairs = list(rehearsal.extra_args)
    assert pairs[::2] == ["-c"] * (len(pairs) // 2)
    # `codex -c key=value` parses value as TOML
    config = {
        key: tomllib.loads(f"v = {value}")["v"]
        for key, _, value in (p.partition("=") for p in pairs[1::2])
    }
    provider = config["model_provider"]
    table = f"model_providers.{provider}"
    assert config[f"{table}.base_url"] == URL + "/v1"
    assert config[f"{table}.wire_api"] == "responses"
    assert config[f"{table}.request_max_retries"] == 2
    assert config[f"{table}.stream_max_retries"] == 2
    key_var = config[f"{table}.env_key"]
    assert rehearsal.env[key_var] == "dummy"
    assert rehearsal.env["CODEX_HOME"] == str(tmp_path / ".codex")
    assert (tmp_path / ".codex").is_dir()
    assert rehearsal.env["HOME"] == str(tmp_path)
    # a model the provider serves, unless the job names one
    assert rehearsal.spec == {"model": "gpt-5.5"}
    assert prepare("codex", URL, tmp_path, model="o9").spec == {}


def test_gemini_settings_and_env(tmp_path: Path) -> None:
    rehearsal = prepare("gemini", URL, tmp_path)
    assert rehearsal.extra_args == ()
    assert rehearsal.env["GOOGLE_GEMINI_BASE_URL"] == URL
    assert rehearsal.env["GEMINI_API_KEY"] == "dummy"
    assert rehearsal.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    settings = json.loads((tmp_path / ".gemini" / "settings.json").read_text())
    assert settings["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert settings["privacy"]["usageStatisticsEnabled"] is False
    assert settings["telemetry"]["enabled"] is False
    assert settings["general"] == {
        "enableAutoUpdate": False,
        "enableAutoUpdateNotification": False,
        "maxAttempts": 1,
    }
    # headless Gemini runs shell commands only in yolo mode: a tool rehearsal asks for it
    assert rehearsal.spec == {}
    tool = prepare("gemini", URL, tmp_path, rehearse={"mode": "tool"})
    assert tool.spec == {"permission_mode": "yolo"}
    chosen = prepare("gemini", URL, tmp_path, rehearse={"mode": "tool"}, permission_mode="plan")
    assert chosen.spec == {}


def test_a_tool_without_the_hook_cannot_be_rehearsed(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="cursor-agent cannot be rehearsed"):
        prepare("cursor-agent", URL, tmp_path)
    assert not (tmp_path / "tmp").exists()  # nothing prepared for it
    rehearsable = sorted(name for name, tool in all_tools().items() if tool.rehearsable)
    assert rehearsable == ["claude", "codex", "copilot", "gemini", "opencode", "qwen"]


def test_public_surface() -> None:
    import corral.provider

    assert sorted(corral.provider.__all__) == [
        "Kind",
        "RecordedRequest",
        "Scenario",
        "ScenarioUsage",
        "SimulatedProvider",
    ]
