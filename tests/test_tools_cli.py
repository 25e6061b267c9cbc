"""`corral tools`, through click's CliRunner, with fake CLIs on PATH."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from corral.cli.main import cli
from corral.tools import base


@pytest.fixture
def fake_clis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, line in {"claude": "2.1.329 (Claude Code)", "codex": "codex-cli 0.169.0"}.items():
        exe = bin_dir / name
        exe.write_text(f'#!/bin/sh\necho "{line}"\n')
        exe.chmod(0o755)
    monkeypatch.setattr(base, "SYSTEM_DIRS", ())
    for var in (
        "CORRAL_CLI_BIN_DIR",
        "CORRAL_CLI_CACHE",
        "NPM_CONFIG_PREFIX",
        "npm_config_prefix",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    return bin_dir


def test_table(fake_clis: Path) -> None:
    result = CliRunner().invoke(cli, ["tools"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line.split() for line in result.output.splitlines()[1:] if line.strip()
    }
    assert rows["claude"] == [
        "claude",
        "yes",
        "2.1.329",
        "verified:",
        "2.1.329",
        "claude-stream-json",
        str(fake_clis / "claude"),
    ]
    assert rows["codex"] == [
        "codex", "yes", "0.169.0", "verified:", "0.169.0", "codex-jsonl", str(fake_clis / "codex"),
    ]  # fmt: skip
    assert rows["gemini"] == ["gemini", "no", "-", "verified:", "0.61.0", "gemini-stream-json", "-"]
    assert rows["cursor-agent"] == [
        "cursor-agent", "no", "-", "unverified:", "written", "from", "documentation",
        "cursor-stream-json", "-",
    ]  # fmt: skip
    # a plain command's output is not parsed: no parser
    assert rows["generic"] == ["generic", "yes", "-", "-", "-", "(runs", "any", "command)"]
    assert "CORRAL_<TOOL>_BIN" in result.output
    assert "warning" not in result.output


def test_a_different_installed_version_is_flagged(fake_clis: Path) -> None:
    qwen = fake_clis / "qwen"
    qwen.write_text('#!/bin/sh\necho "0.99.1"\n')
    qwen.chmod(0o755)
    result = CliRunner().invoke(cli, ["tools", "--json"])
    tools = {t["name"]: t for t in json.loads(result.output)["tools"]}
    assert (tools["qwen"]["version"], tools["qwen"]["verified_version"]) == ("0.99.1", "0.24.4")
    assert tools["qwen"]["warning"] == (
        "qwen 0.99.1 is installed; corral's qwen adapter was verified with 0.24.4,"
        " and a different version may print what corral cannot read"
    )
    assert tools["claude"]["warning"] is None
    table = CliRunner().invoke(cli, ["tools"]).output
    assert "verified: 0.24.4 (installed differs)" in table
    assert "warning: qwen 0.99.1 is installed" in table


def test_json_contract(fake_clis: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_QWEN_BIN", "/nowhere/qwen")
    result = CliRunner().invoke(cli, ["tools", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["schema_version"] == 1
    tools = {t["name"]: t for t in document["tools"]}
    assert list(tools) == [
        "claude",
        "codex",
        "copilot",
        "cursor-agent",
        "gemini",
        "generic",
        "opencode",
        "qwen",
    ]
    assert tools["codex"] == {
        "name": "codex",
        "installed": True,
        "path": str(fake_clis / "codex"),
        "version": "0.169.0",
        "verified_version": "0.169.0",
        "verification": "verified: 0.169.0",
        "warning": None,
        "parser": "codex-jsonl",
        "env_var": "CORRAL_CODEX_BIN",
        "supports": [
            "budget",
            "extra_args",
            "home",
            "model",
            "permission_mode",
            "prompt",
            "resume",
        ],
        "error": None,
    }
    assert tools["cursor-agent"]["verified_version"] is None
    assert tools["cursor-agent"]["verification"] == "unverified: written from documentation"
    assert tools["generic"]["parser"] is None
    assert tools["qwen"]["installed"] is False
    assert tools["qwen"]["error"] == "CORRAL_QWEN_BIN=/nowhere/qwen is not an executable file"
