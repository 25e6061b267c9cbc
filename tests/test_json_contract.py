"""The `--json` summary's keys are a contract: this test pins them (schema_version 1).

Adding a key is allowed (add it here too); removing or renaming one bumps the version.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import corral, write_flow

TOP = {
    "schema_version",
    "run_id",
    "flow",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "log_root",
    "rehearsal",
    "jobs",
    "totals",
}
JOB = {
    "name",
    "status",
    "exit_code",
    "signal",
    "duration_s",
    "attempts",
    "started_at",
    "log_dir",
    "error",
    "error_kind",
    "reason",
    "tool",
    "models",
    "model_source",
    "session_id",
    "usage",
    "cost",
    "outputs",
}
USAGE = {
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "tool_calls",
    "turns",
}
STATUSES = {"succeeded", "failed", "timed_out", "cancelled", "skipped"}


def test_summary_keys_are_pinned(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data" / "agents"
    flow = write_flow(
        tmp_path,
        """
        jobs:
          ok: {run: FAKE echo fine}
          bad: {run: FAKE exit 1}
          after: {run: FAKE echo no, needs: [bad]}
          agent: {tool: claude, prompt: hi, env: {FAKE_AGENT_SCRIPT: claude_text}}
        """,
    )
    env = {
        "FAKE_AGENT_DIR": str(data),
        "CORRAL_CLAUDE_BIN": str(Path(__file__).parent / "fakes" / "fake_agent.py"),
    }
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path, env=env)
    summary = json.loads(result.stdout)
    assert set(summary) == TOP
    assert summary["schema_version"] == 1
    assert summary["status"] == "failed"
    assert set(summary["totals"]) == {"usage", "cost"}
    assert set(summary["totals"]["usage"]) == USAGE
    for job in summary["jobs"]:
        assert set(job) == JOB, job["name"]
        assert job["status"] in STATUSES
        assert set(job["usage"]) == USAGE
        if job["cost"] is not None:  # null: nothing was spent or reported
            assert set(job["cost"]) == {"usd", "source"}
            assert job["cost"]["source"] in {"reported", "estimated", "unpriced"}
    jobs = {j["name"]: j for j in summary["jobs"]}
    # a job that called no model has no cost: null, as the history JSON says
    assert jobs["ok"]["cost"] is None and jobs["bad"]["cost"] is None
    assert jobs["after"]["status"] == "skipped"
    assert jobs["after"]["reason"] == "skipped: needs 'bad' failed"
    assert jobs["agent"]["cost"]["source"] == "reported"
    assert summary["started_at"].endswith("Z") and summary["ended_at"].endswith("Z")
