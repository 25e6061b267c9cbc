"""find_executable order and version reading, against fake executables in temp dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.errors import ToolError
from corral.tools import base, get_tool


def fake(directory: Path, name: str, body: str = 'echo "1.2.3"') -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def no_system_dirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # this machine's /usr/local/bin and its installed CLI cache must not decide the tests
    monkeypatch.setattr(base, "SYSTEM_DIRS", ())
    monkeypatch.setenv("CORRAL_CLI_CACHE", str(tmp_path_factory.mktemp("no-cli-cache")))


def test_pinned_variable_wins_over_path(tmp_path: Path) -> None:
    on_path = fake(tmp_path / "path", "claude")
    pinned = fake(tmp_path / "elsewhere", "claude-nightly")
    env = {"PATH": str(on_path.parent), "CORRAL_CLAUDE_BIN": str(pinned)}
    assert get_tool("claude").find_executable(env) == str(pinned)


def test_pinned_bare_name_is_looked_up_on_path(tmp_path: Path) -> None:
    found = fake(tmp_path / "bin", "agent-beta")
    env = {"PATH": str(found.parent), "CORRAL_CURSOR_AGENT_BIN": "agent-beta"}
    assert get_tool("cursor-agent").find_executable(env) == str(found)


def test_pinned_variable_that_is_not_executable_is_an_error(tmp_path: Path) -> None:
    env = {"PATH": "", "CORRAL_CODEX_BIN": str(tmp_path / "missing")}
    with pytest.raises(ToolError, match=r"CORRAL_CODEX_BIN=.*is not an executable file"):
        get_tool("codex").find_executable(env)


def test_path_wins_over_install_dirs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fake(home / ".local/bin", "gemini")
    on_path = fake(tmp_path / "path", "gemini")
    assert get_tool("gemini").find_executable(
        {"PATH": str(on_path.parent), "HOME": str(home)}
    ) == str(on_path)


def test_fallback_dirs_in_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cli_dir = tmp_path / "corral-bin"
    npm = tmp_path / "npm"
    env = {
        "PATH": str(tmp_path / "empty"),
        "HOME": str(home),
        "NPM_CONFIG_PREFIX": str(npm),
        "CORRAL_CLI_BIN_DIR": str(cli_dir),
    }
    claude = get_tool("claude")
    assert claude.find_executable(env) is None
    order = [
        fake(home / ".local/bin", "claude"),
        fake(home / ".npm-global/bin", "claude"),
        fake(home / ".claude/local", "claude"),
        fake(npm / "bin", "claude"),
        fake(cli_dir, "claude"),
        fake(base.cli_cache_bin(), "claude"),
    ]
    for path in order:
        assert claude.find_executable(env) == str(path)
        path.unlink()
    assert claude.find_executable(env) is None


def test_npmrc_prefix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".npmrc").write_text(f"fund=false\nprefix = {tmp_path / 'g'}\n")
    found = fake(tmp_path / "g/bin", "opencode")
    assert get_tool("opencode").find_executable({"PATH": "", "HOME": str(home)}) == str(found)


def test_not_executable_file_is_skipped(tmp_path: Path) -> None:
    plain = tmp_path / "bin" / "qwen"
    plain.parent.mkdir()
    plain.write_text("")
    assert get_tool("qwen").find_executable({"PATH": str(plain.parent)}) is None


def test_version_reads_the_number(tmp_path: Path) -> None:
    codex = fake(tmp_path, "codex", 'echo "codex-cli 0.169.0"')
    claude = fake(tmp_path, "claude", 'echo "2.1.329 (Claude Code)"')
    gemini = fake(tmp_path, "gemini", 'echo "" ; echo "0.61.0"')
    assert get_tool("codex").version(str(codex)) == "0.169.0"
    assert get_tool("claude").version(str(claude)) == "2.1.329"
    assert get_tool("gemini").version(str(gemini)) == "0.61.0"


def test_version_sees_closed_stdin(tmp_path: Path) -> None:
    # a CLI that waits for stdin would hang here if stdin were inherited
    exe = fake(tmp_path, "codex", 'cat; echo "codex-cli 9.9.9"')
    assert get_tool("codex").version(str(exe)) == "9.9.9"


def test_version_failure_or_hang_gives_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = fake(tmp_path, "fails", "echo boom >&2; exit 3")
    hanging = fake(tmp_path, "hangs", "sleep 30 & sleep 30")
    tool = get_tool("gemini")
    monkeypatch.setattr(type(tool), "version_timeout", 0.3)
    assert tool.version(str(failing)) is None
    assert tool.version(str(hanging)) is None  # the whole group is killed: no leftovers
    assert tool.version(os.devnull) is None
