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
    for var in ("CORRAL_CLI_BIN_DIR", "NPM_CONFIG_PREFIX", "npm_config_prefix"):
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
        "claude-stream-json",
        str(fake_clis / "claude"),
    ]
    assert rows["codex"] == ["codex", "yes", "0.169.0", "codex-jsonl", str(fake_clis / "codex")]
    assert rows["gemini"] == ["gemini", "no", "-", "gemini-stream-json", "-"]
    assert rows["generic"] == ["generic", "yes", "-", "generic", "(runs", "any", "command)"]
    assert "CORRAL_<TOOL>_BIN" in result.output


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
    assert tools["qwen"]["installed"] is False
    assert tools["qwen"]["error"] == "CORRAL_QWEN_BIN=/nowhere/qwen is not an executable file"
