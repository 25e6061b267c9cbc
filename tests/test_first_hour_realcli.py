"""The real Claude Code, Codex, Gemini, Qwen Code and Copilot CLIs with no credentials
(and no network), as a new user's first `corral exec claude ...` meets them: each failure
is classified as what it is, an auth failure is never retried, and Codex's endless
reconnecting is stopped and reported as a connection failure (issue 13, items 5 and 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.realcli

# the credentials each CLI could find in the environment: none must reach it
SECRETS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "GEMINI_API_KEY",
    "COPILOT_GITHUB_TOKEN",
    "GH_TOKEN",
    "GITHUB_TOKEN",
)


def test_no_credentials_real_clis(cli_bin: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {name: value for name, value in os.environ.items() if name not in SECRETS}
    env.update(HOME=str(home), CORRAL_CLI_BIN_DIR=str(cli_bin))
    for tool in ("claude", "codex", "gemini", "qwen", "copilot"):
        env[f"CORRAL_{tool.upper()}_BIN"] = str(cli_bin / tool)
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "defaults: {retries: 2, retry_delay: 0.1}\n"
        "jobs:\n"
        "  claude: {tool: claude, prompt: say hi}\n"
        "  gemini: {tool: gemini, prompt: say hi}\n"
        "  qwen: {tool: qwen, prompt: say hi}\n"
        "  copilot: {tool: copilot, prompt: say hi}\n"
        "  codex: {tool: codex, prompt: say hi, idle_timeout: 4s, retries: 0, kill_grace: 2s}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "corral", "run", str(flow), "--json", "--no-store"],
        cwd=tmp_path, env={**env, "NO_COLOR": "1"}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.stdout, result.stderr
    jobs = {job["name"]: job for job in json.loads(result.stdout)["jobs"]}
    for name in ("claude", "gemini", "qwen", "copilot"):  # auth errors are never retried
        job = jobs[name]
        assert (job["status"], job["error_kind"], job["attempts"]) == ("failed", "auth", 1), job
    assert "Not logged in" in jobs["claude"]["error"]
    assert "No auth type is selected" in jobs["qwen"]["error"]
    assert "No authentication information found" in jobs["copilot"]["error"]
    codex = jobs["codex"]
    assert codex["status"] == "failed", codex
    if codex["error_kind"] != "auth":  # a machine with a network would get Codex's 401
        assert codex["error_kind"] == "api"
        assert codex["error"].startswith("cannot reach the API: only connection retries")
    assert result.returncode == 1
