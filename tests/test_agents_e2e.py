"""Agent jobs end to end: fake CLIs replay the real recorded outputs through `corral run`.

The totals in `--json` must equal what each CLI itself reported; budgets must stop
and kill while jobs run.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from helpers import corral, write_flow

DATA = Path(__file__).parent / "data" / "agents"
FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"


def agent_env(**extra: str) -> dict[str, str]:
    return {
        "FAKE_AGENT_DIR": str(DATA),
        "CORRAL_CLAUDE_BIN": str(FAKE_AGENT),
        "CORRAL_CODEX_BIN": str(FAKE_AGENT),
        "CORRAL_GEMINI_BIN": str(FAKE_AGENT),
        **extra,
    }


def run_json(
    tmp_path: Path, flow_text: str, *args: str, **env: str
) -> tuple[int, dict[str, Any], str]:
    flow = write_flow(tmp_path, flow_text)
    result = corral(
        "run", str(flow), "--json", "--no-store", *args, cwd=tmp_path, env=agent_env(**env)
    )
    return result.returncode, json.loads(result.stdout), result.stderr


def last_json(name: str, key: str = "type", value: str = "result") -> dict[str, Any]:
    for line in reversed((DATA / name).read_text().splitlines()):
        if line.startswith("{"):
            data = json.loads(line, parse_float=Decimal)
            if data.get(key) == value:
                return data
    raise AssertionError(f"no {value} in {name}")


def test_claude_codex_gemini_totals_equal_what_the_clis_reported(tmp_path: Path) -> None:
    code, summary, stderr = run_json(
        tmp_path,
        """
        jobs:
          review: {tool: claude, prompt: "review", env: {FAKE_AGENT_SCRIPT: claude_tool}}
          tests:
            {tool: codex, prompt: "tests", model: gpt-5.5, env: {FAKE_AGENT_SCRIPT: codex_tool}}
          ask: {tool: gemini, prompt: "hi", env: {FAKE_AGENT_SCRIPT: gemini_text}}
        """,
    )
    assert code == 0, stderr
    jobs = {j["name"]: j for j in summary["jobs"]}

    claude = last_json("claude_tool.out")
    review = jobs["review"]
    assert review["cost"] == {"usd": str(claude["total_cost_usd"]), "source": "reported"}
    assert review["usage"]["input_tokens"] == claude["usage"]["input_tokens"]
    assert review["usage"]["output_tokens"] == claude["usage"]["output_tokens"]
    assert review["usage"]["cache_read_tokens"] == claude["usage"]["cache_read_input_tokens"]
    assert review["usage"]["cache_write_tokens"] == claude["usage"]["cache_creation_input_tokens"]
    assert review["usage"]["tool_calls"] == 1 and review["usage"]["turns"] == claude["num_turns"]
    assert review["session_id"] == claude["session_id"] and review["tool"] == "claude"

    codex = last_json("codex_tool.out", value="turn.completed")["usage"]
    tests = jobs["tests"]["usage"]
    # Codex's input_tokens includes cache reads and writes; corral keeps them apart
    fresh = tests["input_tokens"] + tests["cache_read_tokens"] + tests["cache_write_tokens"]
    assert fresh == codex["input_tokens"]
    assert tests["cache_write_tokens"] == codex["cache_write_input_tokens"]
    assert tests["cache_read_tokens"] == codex["cached_input_tokens"]
    assert tests["output_tokens"] == codex["output_tokens"]
    assert jobs["tests"]["cost"]["source"] == "estimated" and jobs["tests"]["models"] == ["gpt-5.5"]

    gemini = last_json("gemini_text.out")["stats"]
    ask = jobs["ask"]["usage"]
    assert ask["input_tokens"] + ask["cache_read_tokens"] == gemini["input_tokens"]
    # thought tokens appear only in Gemini's total; corral counts them as output (billed so)
    thoughts = gemini["total_tokens"] - gemini["input_tokens"] - gemini["output_tokens"]
    assert ask["output_tokens"] == gemini["output_tokens"] + thoughts
    assert ask["reasoning_tokens"] == thoughts
    assert sorted(jobs["ask"]["models"]) == sorted(gemini["models"])

    totals = summary["totals"]["usage"]
    assert totals["output_tokens"] == sum(j["usage"]["output_tokens"] for j in jobs.values())


def test_agent_errors_have_kinds(tmp_path: Path) -> None:
    code, summary, _ = run_json(
        tmp_path,
        """
        jobs:
          auth: {tool: claude, prompt: "x", env: {FAKE_AGENT_SCRIPT: claude_401}}
          server: {tool: gemini, prompt: "x", env: {FAKE_AGENT_SCRIPT: gemini_500}}
        """,
    )
    assert code == 1
    jobs = {j["name"]: j for j in summary["jobs"]}
    assert jobs["auth"]["status"] == "failed" and jobs["auth"]["error_kind"] == "auth"
    assert jobs["server"]["status"] == "failed" and jobs["server"]["error_kind"] == "api"
    assert jobs["server"]["exit_code"] == 244


def test_result_flows_into_the_next_prompt(tmp_path: Path) -> None:
    args_log = tmp_path / "args.jsonl"
    code, _, stderr = run_json(
        tmp_path,
        """
        jobs:
          analyze: {tool: claude, prompt: "analyze", env: {FAKE_AGENT_SCRIPT: claude_tool}}
          fix:
            tool: codex
            needs: [analyze]
            prompt: "Fix this: {{ jobs.analyze.result }}"
            env: {FAKE_AGENT_SCRIPT: codex_tool}
        """,
        FAKE_AGENT_ARGS=str(args_log),
    )
    assert code == 0, stderr
    calls = [json.loads(line) for line in args_log.read_text().splitlines()]
    assert "Fix this: The command printed: hello-from-mock-tool" in calls[1]
    assert calls[0][:2] == ["-p", "analyze"]


def test_run_budget_stop_starts_no_new_job(tmp_path: Path) -> None:
    code, summary, stderr = run_json(
        tmp_path,
        """
        concurrency: 1
        budget: {usd: 0.05, on_exceed: stop}
        jobs:
          first: {tool: claude, prompt: "a", env: {FAKE_AGENT_SCRIPT: claude_tool}}
          second: {tool: claude, prompt: "b", env: {FAKE_AGENT_SCRIPT: claude_tool}}
          third: {tool: claude, prompt: "c", env: {FAKE_AGENT_SCRIPT: claude_tool}}
        """,
    )
    jobs = {j["name"]: j for j in summary["jobs"]}
    assert jobs["first"]["status"] == "succeeded"
    for name in ("second", "third"):
        assert jobs[name]["status"] == "skipped"
        assert "budget" in jobs[name]["reason"]
    # work the money kept from running is not success: `stopped`, exit 5
    assert (code, summary["status"]) == (5, "stopped")
    spent = Decimal(summary["totals"]["cost"]["usd"])
    assert re.search(r"budget \(run\) exceeded: \$0\.\d\d of \$0\.05 so far; stop: no new", stderr)
    assert f"budget (run): ${spent:.2f} spent of $0.05" in stderr  # the final figure


def test_job_budget_kill_stops_a_running_agent(tmp_path: Path) -> None:
    code, summary, stderr = run_json(
        tmp_path,
        """
        jobs:
          spender:
            tool: claude
            prompt: "a"
            budget: {usd: 0.01, on_exceed: kill}
            env:
              FAKE_AGENT_SCRIPT: claude_tool
              FAKE_AGENT_PACE: "0.2"
              FAKE_AGENT_HOLD_LAST: "60"
        """,
    )
    assert (code, summary["status"]) == (5, "stopped"), stderr  # killed by its budget
    job = summary["jobs"][0]
    assert job["status"] == "failed" and job["error_kind"] == "budget"
    assert Decimal(job["cost"]["usd"]) > Decimal("0.01")
    assert job["cost"]["source"] == "estimated"  # killed before Claude's own total arrived


def test_unsupported_agent_field_is_a_flow_error(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "jobs:\n  t:\n    tool: codex\n    prompt: x\n    max_turns: 3\n")
    result = corral("validate", str(flow), cwd=tmp_path)
    assert result.returncode == 2
    assert "codex does not support max_turns" in result.stderr
    assert f"{flow}:5:5: jobs.t.max_turns: codex does not support max_turns" in result.stderr


@pytest.mark.parametrize("tool", ["claude", "codex", "gemini"])
def test_exec_agent_single_instance(tmp_path: Path, tool: str) -> None:
    script = {"claude": "claude_text", "codex": "codex_tool", "gemini": "gemini_text"}[tool]
    result = corral(
        "exec",
        "--json",
        "--no-store",
        tool,
        "say hello",
        cwd=tmp_path,
        env=agent_env(FAKE_AGENT_SCRIPT=script),
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)["jobs"][0]
    assert job["tool"] == tool and job["usage"]["output_tokens"] > 0


ROLLOUT = Path(__file__).parent / "data" / "tools" / "codex_home" / "sessions" / "2026" / "12"


def _codex_home(tmp_path: Path, thread: str, model: str) -> Path:
    """A CODEX_HOME whose session file says which model the turn used (a real rollout's
    records, renamed for `thread`)."""
    (recorded,) = (ROLLOUT / "03").glob("rollout-*.jsonl")
    text = recorded.read_text().replace("gpt-6.1-sol", model)
    folder = tmp_path / "codex_home" / "sessions" / "2026" / "12" / "03"
    folder.mkdir(parents=True)
    (folder / f"rollout-2026-12-03T08-22-02-{thread}.jsonl").write_text(text)
    return tmp_path / "codex_home"


def test_codex_without_a_model_is_priced_by_the_model_it_used(tmp_path: Path) -> None:
    thread = last_json("codex_tool.out", value="thread.started")["thread_id"]
    home = _codex_home(tmp_path, thread, "gpt-5")
    code, summary, stderr = run_json(
        tmp_path,
        f"""
        jobs:
          tests:
            tool: codex
            prompt: tests
            env: {{FAKE_AGENT_SCRIPT: codex_tool, CODEX_HOME: "{home}"}}
        """,
    )
    assert code == 0, stderr
    (job,) = summary["jobs"]
    assert job["models"] == ["gpt-5"]
    (rollout,) = home.glob("sessions/*/*/*/*.jsonl")
    assert job["model_source"] == f"codex session file {rollout}"
    assert job["cost"]["source"] == "estimated" and Decimal(job["cost"]["usd"]) > 0


def test_codex_without_a_session_file_falls_back_to_its_config(tmp_path: Path) -> None:
    home = tmp_path / "codex_home"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "gpt-4o"\nprofile = "fast"\n[profiles.fast]\nmodel = "gpt-4.1"\n'
    )
    code, summary, stderr = run_json(
        tmp_path,
        f"""
        jobs:
          tests:
            tool: codex
            prompt: t
            env: {{FAKE_AGENT_SCRIPT: codex_tool, CODEX_HOME: "{home}"}}
        """,
    )
    assert code == 0, stderr
    (job,) = summary["jobs"]
    assert job["models"] == ["gpt-4.1"]
    assert job["model_source"] == f"codex config {home / 'config.toml'}"
    assert job["cost"]["source"] == "estimated"


def test_a_failed_codex_run_reported_no_cost(tmp_path: Path) -> None:
    code, summary, _ = run_json(
        tmp_path,
        """
        jobs:
          broken: {tool: codex, prompt: t, model: gpt-5.5, env: {FAKE_AGENT_SCRIPT: codex_401}}
        """,
    )
    assert code == 1
    (job,) = summary["jobs"]
    assert (job["status"], job["error_kind"]) == ("failed", "auth")
    # nothing was reported or spent: no "$0 reported"
    assert job["cost"] is None
    assert summary["totals"]["cost"] is None


def test_copilot_tokens_come_from_its_session_log(tmp_path: Path) -> None:
    stdout = (DATA / "copilot_tool.out").read_text().splitlines()
    session = json.loads(stdout[-1])["sessionId"]
    copilot_home = tmp_path / "copilot_home"
    log = copilot_home / "session-state" / session / "events.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text((DATA / "copilot_tool.session").read_text())
    code, summary, stderr = run_json(
        tmp_path,
        f"""
        jobs:
          ask:
            tool: copilot
            prompt: run it
            model: gpt-5.5
            env: {{FAKE_AGENT_SCRIPT: copilot_tool, COPILOT_HOME: "{copilot_home}"}}
        """,
        CORRAL_COPILOT_BIN=str(FAKE_AGENT),
    )
    assert code == 0, stderr
    (job,) = summary["jobs"]
    shutdown = json.loads(log.read_text().splitlines()[-1])["data"]["accountingSnapshot"]
    usage = shutdown["modelMetrics"]["gpt-5.5"]["usage"]
    assert job["usage"]["input_tokens"] + job["usage"]["cache_read_tokens"] == usage["inputTokens"]
    assert job["usage"]["output_tokens"] == usage["outputTokens"]
    assert (job["usage"]["tool_calls"], job["usage"]["turns"]) == (1, 2)
    assert job["session_id"] == session and job["models"] == ["gpt-5.5"]
    assert job["cost"]["source"] == "estimated"


def test_run_warns_when_the_installed_cli_is_not_the_verified_version(tmp_path: Path) -> None:
    # the fake agent answers `--version` with 9.9.9; the adapter was verified with 2.1.329
    # (the fake reads FAKE_AGENT_SCRIPT even for --version, which runs in corral's env)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "FAKE_AGENT_SCRIPT": "claude_text"}
    flow = """
        jobs:
          review: {tool: claude, prompt: "review", env: {FAKE_AGENT_SCRIPT: claude_text}}
        """
    code, _, stderr = run_json(tmp_path, flow, **env)
    assert code == 0, stderr
    warning = (
        "corral: warning: claude 9.9.9 is installed; corral's claude adapter was verified"
        " with 2.1.329, and a different version may print what corral cannot read"
    )
    assert stderr.count(warning) == 1
    # the answer is remembered while the executable stays the same
    assert (tmp_path / "cache" / "corral" / "cli-versions.json").is_file()
    assert run_json(tmp_path, flow, **env)[2].count(warning) == 1
