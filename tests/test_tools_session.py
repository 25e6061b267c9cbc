"""What adapters read from a CLI's own files after a run (Tool.session_report), and the
Codex fixes: its own idle timeout is `idle`, and the model it used when the flow named none."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from corral.events.types import AgentError, AgentResult, SessionStarted, UsageUpdated
from corral.models import ErrorKind
from corral.parsing import make_parser
from corral.tools import get_tool
from corral.tools.codex import config_model, rollout_model

DATA = Path(__file__).parent / "data"
CODEX_HOME = DATA / "tools" / "codex_home"
THREAD = "01a23aff-08d2-7990-9036-0674b0b83ccb"  # the recorded rollout's session


def test_codex_stream_idle_timeout_is_idle_not_api() -> None:
    # recorded with Codex 0.169.0, stream_idle_timeout_ms=1500 and a stream that stalls
    lines = (DATA / "parsing" / "codex" / "codex_idle_timeout.jsonl").read_text().splitlines()
    parser = make_parser("codex-jsonl", model="gpt-5.5")
    events = [e for line in lines for e in parser.feed(line, "stdout")] + parser.finish(1)
    (error,) = [e for e in events if isinstance(e, AgentError)]
    assert error.error_kind is ErrorKind.IDLE
    assert error.message == "stream disconnected before completion: idle timeout waiting for SSE"
    (result,) = [e for e in events if isinstance(e, AgentResult)]
    assert result.is_error and result.error_kind is ErrorKind.IDLE


def test_codex_model_from_its_rollout_file() -> None:
    report = get_tool("codex").session_report({"CODEX_HOME": str(CODEX_HOME)}, THREAD, model=None)
    assert report is not None and report.model == "gpt-6.1-sol"
    (rollout,) = CODEX_HOME.glob(f"sessions/*/*/*/rollout-*-{THREAD}.jsonl")
    assert report.source == f"codex session file {rollout}"


def test_codex_reads_nothing_when_the_flow_named_the_model() -> None:
    env = {"CODEX_HOME": str(CODEX_HOME)}
    assert get_tool("codex").session_report(env, THREAD, model="gpt-5.5") is None


def test_codex_config_model_and_profile(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('model = "gpt-5"\n')
    assert config_model(config) == "gpt-5"
    config.write_text('model = "gpt-5"\nprofile = "deep"\n[profiles.deep]\nmodel = "o3"\n')
    assert config_model(config) == "o3"
    config.write_text("model = [broken")
    assert config_model(config) is None
    assert config_model(tmp_path / "missing.toml") is None


def test_codex_session_file_wins_over_config_and_odd_ids_are_ignored(tmp_path: Path) -> None:
    home = tmp_path / "codex"
    shutil.copytree(CODEX_HOME, home)
    (home / "config.toml").write_text('model = "gpt-5"\n')
    codex = get_tool("codex")
    env = {"HOME": str(tmp_path / "elsewhere"), "CODEX_HOME": str(home)}
    found = codex.session_report(env, THREAD, model=None)
    assert found is not None and found.model == "gpt-6.1-sol"
    # an id that is no Codex thread id is not globbed: the config answers
    for odd in ("../../etc", "*", None):
        fallback = codex.session_report(env, odd, model=None)
        assert fallback is not None and fallback.model == "gpt-5"
        assert fallback.source == f"codex config {home / 'config.toml'}"


def test_rollout_model_takes_the_last_turn_and_skips_other_lines() -> None:
    turn = {"type": "turn_context", "payload": {"model": "gpt-5.5"}}
    later = {"type": "turn_context", "payload": {"model": "gpt-6.1-sol"}}
    noise = {"type": "response_item", "payload": {"text": '"turn_context"' * 100}}
    lines = [json.dumps(turn), "not json", json.dumps(noise), json.dumps(later)]
    assert rollout_model(lines) == "gpt-6.1-sol"
    assert rollout_model([]) is None


def test_the_codex_parser_keys_final_usage_by_the_model_read_after_the_run() -> None:
    lines = (DATA / "parsing" / "codex" / "codex_default_model.jsonl").read_text().splitlines()
    parser = make_parser("codex-jsonl")  # the flow named no model
    events = [e for line in lines for e in parser.feed(line, "stdout")]
    live = [e for e in events if isinstance(e, UsageUpdated)]
    assert list(live[-1].by_model) == ["unknown"]
    told = parser.cli_files("gpt-6.1-sol", "codex session file X", [])
    assert told == [
        SessionStarted(
            session_id=json.loads(lines[0])["thread_id"],
            model="gpt-6.1-sol",
            model_source="codex session file X",
        )
    ]
    (final,) = [e for e in parser.finish(0) if isinstance(e, UsageUpdated)]
    assert final.final and list(final.by_model) == ["gpt-6.1-sol"]


def _opencode_db(path: Path, rows: list[tuple[str, int, dict[str, object]]]) -> None:
    # the `message` table as OpenCode 1.18.33 creates it
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE message (id text PRIMARY KEY, session_id text NOT NULL,"
            " time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL)"
        )
        for number, (session, created, data) in enumerate(rows):
            db.execute(
                "INSERT INTO message VALUES (?, ?, ?, ?, ?)",
                (f"msg_{number}", session, created, created, json.dumps(data)),
            )
    path.chmod(0o444)


def test_opencode_model_from_its_session_database(tmp_path: Path) -> None:
    database = tmp_path / "data" / "opencode" / "opencode.db"
    user = {"role": "user", "model": {"providerID": "corral", "modelID": "sim-model"}}
    answer = {"role": "assistant", "modelID": "claude-sonnet-4-5", "providerID": "anthropic"}
    _opencode_db(database, [("ses_1", 1, user), ("ses_1", 2, answer), ("ses_2", 3, {})])
    opencode = get_tool("opencode")
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    report = opencode.session_report(env, "ses_1", model=None)
    assert report is not None
    assert report.model == "anthropic/claude-sonnet-4-5"
    assert report.source == f"opencode session database {database}"
    assert opencode.session_report(env, "ses_2", model=None) is None
    assert opencode.session_report(env, "ses_1", model="a/b") is None
    assert opencode.session_report({"HOME": str(tmp_path)}, "ses_1", model=None) is None


def test_copilot_session_report_keeps_only_the_accounting_records(tmp_path: Path) -> None:
    session = "2ed0fe8f-3412-4c24-a990-396acb05cbb1"
    log = tmp_path / "session-state" / session / "events.jsonl"
    log.parent.mkdir(parents=True)
    recorded = (DATA / "parsing" / "copilot" / "copilot_usage.session").read_text()
    log.write_text('{"type":"tool.execution_complete","data":{"big":"x"}}\n' + recorded)
    copilot = get_tool("copilot")
    report = copilot.session_report({"COPILOT_HOME": str(tmp_path)}, session, model=None)
    assert report is not None and report.model is None
    assert [json.loads(line)["type"] for line in report.lines] == [
        json.loads(line)["type"] for line in recorded.splitlines()
    ]
    assert copilot.session_report({"COPILOT_HOME": str(tmp_path)}, "..", model=None) is None
    assert copilot.session_report({"COPILOT_HOME": str(tmp_path)}, "nope", model=None) is None
