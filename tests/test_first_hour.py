"""What a new user hits in the first hour (issue 13), each a regression test.

Each test names the review's item it guards; the whole-README and the docs' flows are
checked in test_docs_flows.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import corral

FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"
AGENTS = Path(__file__).parent / "data" / "agents"


def _agent_env(tmp_path: Path, script: str) -> dict[str, str]:
    return {
        "FAKE_AGENT_DIR": str(AGENTS),
        "FAKE_AGENT_SCRIPT": script,
        "FAKE_AGENT_ARGS": str(tmp_path / "argv.jsonl"),
        "CORRAL_CLAUDE_BIN": str(FAKE_AGENT),
        "CORRAL_CODEX_BIN": str(FAKE_AGENT),
    }


def _argv(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "argv.jsonl").read_text().splitlines()
    calls = [json.loads(line) for line in lines]
    return next(c for c in calls if "--version" not in c)


# item 1: options are parsed wherever they stand; only what follows -- is literal
@pytest.mark.parametrize(
    "args",
    [
        ("codex", "say hi", "--model", "gpt-5.5", "--json", "--no-store"),
        ("--json", "codex", "say hi", "--no-store", "--model", "gpt-5.5"),
    ],
)
def test_exec_options_after_the_prompt_are_options(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = corral("exec", *args, cwd=tmp_path, env=_agent_env(tmp_path, "codex_tool"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # --json after the prompt gave JSON on stdout
    assert summary["jobs"][0]["models"] == ["gpt-5.5"]
    argv = _argv(tmp_path)
    assert argv[argv.index("--model") + 1] == "gpt-5.5"
    assert argv[-1] == "say hi"  # the prompt, without the options


def test_exec_after_double_dash_is_literal(tmp_path: Path) -> None:
    result = corral(
        "exec", "claude", "--json", "--no-store", "--", "--model is a word here",
        cwd=tmp_path, env=_agent_env(tmp_path, "claude_text"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    assert "--model is a word here" in _argv(tmp_path)
    quiet = corral("exec", "--no-store", "--", "echo", "-q", "--json", cwd=tmp_path)
    assert quiet.returncode == 0 and "-q --json" in quiet.stdout  # the command's own words


def test_exec_unknown_option_says_where_command_options_go(tmp_path: Path) -> None:
    result = corral("exec", "ls", "-la", cwd=tmp_path)
    assert result.returncode == 2
    assert "no such option: -l" in result.stderr and "corral exec [OPTIONS] -- CMD" in result.stderr


def test_exec_offers_no_jobs_option(tmp_path: Path) -> None:  # item 15
    help_text = corral("exec", "--help", cwd=tmp_path).stdout
    assert "--jobs" not in help_text and "-j," not in help_text
    assert "--jobs" in corral("run", "--help", cwd=tmp_path).stdout


def test_since_hint_names_days(tmp_path: Path) -> None:  # item 15
    result = corral("usage", "--since", "yesterday", cwd=tmp_path)
    assert result.returncode == 2 and "7d" in result.stderr


# item 3: one rule for where the history lives, the same for every command
def test_history_is_found_from_where_the_run_was_started(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.yaml").write_text("jobs:\n  a: {run: echo hi}\n")
    empty = corral("runs", cwd=tmp_path)
    assert empty.returncode == 0
    assert f"No runs recorded in {tmp_path / '.corral' / 'corral.db'}" in empty.stdout
    ran = corral("run", "flows/f.yaml", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    assert (tmp_path / ".corral" / "runs" / run_id).is_dir()
    assert not (tmp_path / "flows" / ".corral").exists()
    deeper = tmp_path / "flows" / "deeper"
    deeper.mkdir()
    for folder in (tmp_path, deeper):  # the nearest .corral at or above, as git finds .git
        for command in (("runs",), ("show", run_id), ("logs", run_id, "a"), ("usage",)):
            result = corral(*command, cwd=folder)
            assert result.returncode == 0, (command, result.stderr)
        assert run_id in corral("runs", cwd=folder).stdout
        assert "hi" in corral("logs", run_id, "a", cwd=folder).stdout
    exec_run = corral("exec", "--json", "--", "echo", "x", cwd=deeper)
    assert json.loads(exec_run.stdout)["run_id"] in corral("runs", cwd=tmp_path).stdout


def _run_flow(tmp_path: Path, text: str, env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    flow = tmp_path / "flow.yaml"
    flow.write_text(text)
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path, env=env)
    return result.returncode, json.loads(result.stdout), result.stderr


# item 5: "Not logged in" (Claude Code's own words, recorded) is auth, never retried
def test_claude_not_logged_in_is_auth_and_not_retried(tmp_path: Path) -> None:
    code, summary, stderr = _run_flow(
        tmp_path,
        "jobs:\n  a: {tool: claude, prompt: hi, retries: 2}\n",
        _agent_env(tmp_path, "claude_not_logged_in"),
    )
    job = summary["jobs"][0]
    assert code == 1, stderr
    assert (job["error_kind"], job["attempts"]) == ("auth", 1)
    assert "Not logged in" in job["error"] and "error (auth)" in stderr


@pytest.mark.parametrize(
    "message",
    [
        "Not logged in · Please run /login",
        "Please set an Auth method in your ~/.gemini/settings.json",
        "Missing API key",
        "authentication failed",
        # Qwen Code and Copilot CLI, as they print it with no credentials
        "No auth type is selected. Please configure an auth type (e.g. via settings or "
        "`--auth-type`) before running in non-interactive mode.",
        "Error: No authentication information found.",
    ],
)
def test_credential_messages_are_auth(message: str) -> None:
    from corral.models import ErrorKind
    from corral.parsing.base import kind_of_message

    assert kind_of_message(message)[0] is ErrorKind.AUTH


def test_an_auth_failure_explained_over_several_stderr_lines_is_auth() -> None:
    """Copilot CLI ends its "no credentials" stderr with a list of ways to log in: the
    failure is auth and its message the line that says so, whatever the last line is."""
    from corral.events.types import AgentError, AgentResult
    from corral.models import ErrorKind
    from corral.parsing import make_parser

    parser = make_parser("copilot-jsonl")
    for line in (
        "Error: No authentication information found.",
        "",
        "To authenticate, you can use any of the following methods:",
        "  • Set the COPILOT_GITHUB_TOKEN, GH_TOKEN, or GITHUB_TOKEN environment variable",
        "  • Run 'gh auth login' to authenticate with the GitHub CLI",
    ):
        parser.feed(line, "stderr")
    events = parser.on_finish(1)
    error = next(e for e in events if isinstance(e, AgentError))
    assert (error.error_kind, error.message) == (
        ErrorKind.AUTH,
        "Error: No authentication information found.",
    )
    assert [e.error_kind for e in events if isinstance(e, AgentResult)] == [ErrorKind.AUTH]
    plain = make_parser("copilot-jsonl")
    plain.feed("Traceback: something broke at line 500", "stderr")
    plain.feed("fatal: giving up", "stderr")
    other = [e for e in plain.on_finish(1) if isinstance(e, AgentResult)][-1]
    assert other.error_kind is ErrorKind.EXIT  # no credentials word: still an exit failure


# item 6: agent jobs get an idle timeout by default; retrying a connection is no progress
def test_agent_jobs_get_a_default_idle_timeout() -> None:
    from corral.execute.prepare import DEFAULT_AGENT_IDLE_TIMEOUT, idle_timeout

    assert idle_timeout(None, agent=True) == DEFAULT_AGENT_IDLE_TIMEOUT == 600.0
    assert idle_timeout(None, agent=False) is None  # a command may be silent for long
    assert idle_timeout(0.0, agent=True) is None  # 0 turns it off
    assert idle_timeout(30.0, agent=True) == 30.0


def test_codex_reconnecting_is_connection_trouble() -> None:
    from corral.events.types import ConnectionFailing
    from corral.parsing import make_parser

    parser = make_parser("codex-jsonl", model=None)
    events = [e for line in (AGENTS / "codex_offline.out").read_text().splitlines()
              for e in parser.feed(line, "stdout")]  # fmt: skip
    failing = [e for e in events if isinstance(e, ConnectionFailing)]
    assert len(failing) >= 6
    assert "waiting for network" in failing[-1].message


def test_codex_that_cannot_connect_is_stopped_and_says_so(tmp_path: Path) -> None:
    # the recorded offline Codex, replayed slower than the idle timeout, then hanging: its
    # reconnect lines keep coming, yet they are no progress
    env = {
        **_agent_env(tmp_path, "codex_offline"),
        "FAKE_AGENT_PACE": "0.3",
        "FAKE_AGENT_LINGER": "30",
    }
    code, summary, stderr = _run_flow(
        tmp_path,
        "jobs:\n  a: {tool: codex, prompt: hi, idle_timeout: 1s, kill_grace: 1s}\n",
        env,
    )
    job = summary["jobs"][0]
    assert code == 1, stderr
    assert job["status"] == "failed" and job["error_kind"] == "api"
    assert job["error"].startswith("cannot reach the API: only connection retries for 1s")
    assert "Reconnecting... " in job["error"]  # stopped while the retries were still coming


# item 7: a job downstream of a re-run job is decided again; show gives the final state
def test_resume_reruns_an_always_job_that_ran_on_the_failure_path(tmp_path: Path) -> None:
    flag = tmp_path / "ok.flag"
    (tmp_path / "flow.yaml").write_text(
        "jobs:\n"
        "  prep: {run: echo prep}\n"
        f"  build: {{needs: [prep], run: test -f {flag}}}\n"
        "  test: {needs: [build], run: echo tested}\n"
        "  report: {needs: [test], if: always(), run: 'echo build was ${{ jobs.build.status }}'}\n"
        "  side: {run: echo side}\n"
    )
    first = corral("run", "flow.yaml", "--json", cwd=tmp_path)
    assert first.returncode == 1
    run_id = json.loads(first.stdout)["run_id"]
    flag.touch()
    resumed = corral("resume", run_id, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert [j["name"] for j in summary["jobs"]] == ["build", "test", "report"]
    report = next(j for j in summary["jobs"] if j["name"] == "report")
    assert (Path(report["log_dir"]) / "stdout.log").read_text() == "build was succeeded\n"
    assert "keeping 2 succeeded job(s), running 3" in resumed.stderr
    # show: the flow's combined final state, the kept jobs marked
    shown = json.loads(corral("show", summary["run_id"], "--json", cwd=tmp_path).stdout)
    kept = {job["name"]: job["kept_from"] for job in shown["kept"]}
    assert kept == {"prep": run_id, "side": run_id}
    table = corral("show", summary["run_id"], cwd=tmp_path).stdout
    for name in ("prep", "side", "build", "test", "report"):
        assert f"\n{name} " in table or f"\n {name} " in table
    assert f"kept from {run_id}" in table


# item 13: money without binary-float noise, exact decimals end to end
@pytest.mark.parametrize(
    ("printed", "meant"),
    [("0.9000000000000001", "0.9"), ("0.030749999999999996", "0.03075"),
     ("0.09242800000000001", "0.092428"), ("0.0985404", "0.0985404"), ("0", "0")],
)  # fmt: skip
def test_claude_cost_loses_float_noise(printed: str, meant: str) -> None:
    from decimal import Decimal

    from corral.events.types import UsageUpdated
    from corral.parsing import make_parser

    parser = make_parser("claude-stream-json", model=None)
    line = (
        '{"type":"result","subtype":"success","is_error":false,"result":"ok",'
        f'"total_cost_usd":{printed},"usage":{{"input_tokens":1,"output_tokens":1}},'
        f'"modelUsage":{{"m":{{"inputTokens":1,"outputTokens":1,"costUSD":{printed}}}}}}}'
    )
    events = parser.feed(line, "stdout")
    final = next(e for e in events if isinstance(e, UsageUpdated) and e.final)
    assert final.cost is not None and str(final.cost.usd) == meant
    assert final.cost_by_model["m"] == Decimal(meant)


def test_summary_and_usage_show_claude_cost_exactly(tmp_path: Path) -> None:
    env = _agent_env(tmp_path, "claude_text")  # Claude printed 0.09242800000000001
    ran = corral("exec", "claude", "hi", "--json", cwd=tmp_path, env=env)
    assert json.loads(ran.stdout)["jobs"][0]["cost"]["usd"] == "0.092428"
    used = json.loads(corral("usage", "--json", cwd=tmp_path).stdout)
    assert "0.092428" in json.dumps(used) and "0000000" not in json.dumps(used)


# item 10: a job whose failure went to stderr shows it in `corral logs`
def test_usage_writes_each_sum_of_money_one_way() -> None:
    """A usage sum is plain decimal text in JSON and CSV (`0.00078`, not the `0.0007800`
    its terms' digits leave), and a total with nothing in it reads `-` as its rows do."""
    from decimal import Decimal

    from rich.console import Console

    from corral.models import Tokens
    from corral.render.history import usage_csv, usage_table
    from corral.store.records import UsageRow

    rows = [
        UsageRow("gpt-5.5", 2, Tokens(), Decimal(0), Decimal("0.0007800"), 0),
        UsageRow("sonnet", 1, Tokens(), Decimal("0.06150"), Decimal(0), 0),
    ]
    assert rows[0].to_dict()["cost"] == {
        "reported_usd": "0",
        "estimated_usd": "0.00078",
        "known_usd": "0.00078",
        "unpriced": 0,
    }
    assert rows[1].to_dict()["cost"]["reported_usd"] == "0.0615"
    assert usage_csv("model", rows).splitlines()[1:] == [
        "gpt-5.5,2,0,0,0,0,0,0,0,0.00078,0",
        "sonnet,1,0,0,0,0,0,0,0.0615,0,0",
    ]
    console = Console(width=160, record=True)
    console.print(usage_table("model", rows))
    total = console.export_text().splitlines()[-1].split()
    assert total[0] == "total" and total[-3:] == ["$0.06", "$0.0008", "-"]


def test_logs_shows_a_failure_written_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(
        "jobs:\n  build: {run: \"sh -c 'echo no flag >&2; exit 1'\"}\n"
    )
    run_id = json.loads(corral("run", "flow.yaml", "--json", cwd=tmp_path).stdout)["run_id"]
    shown = corral("logs", run_id, "build", cwd=tmp_path)
    assert (shown.returncode, shown.stdout) == (0, "stderr| no flag\n")
    assert corral("logs", run_id, "build", "--stderr", cwd=tmp_path).stdout == "no flag\n"
    misspelt = corral("logs", run_id, "biuld", cwd=tmp_path)
    assert misspelt.returncode == 4
    assert "no job 'biuld' in run" in misspelt.stderr
    assert "(did you mean 'build'?) (jobs: build)" in misspelt.stderr


# item 12: mistakes are errors with file:line:col, every one at once
def test_silent_mistakes_are_errors_each_at_its_place() -> None:
    from helpers import problems_of

    text = (
        "jobs:\n"
        "  -dash: {run: echo}\n"
        "  .hidden: {run: echo}\n"
        "  '': {run: echo}\n"
        "  café: {run: echo}\n"
        "  ok: {run: echo, timeout: 0}\n"
    )
    assert problems_of(text) == [
        "flow.yaml:2:3: jobs.-dash: job name '-dash' starts with '-': start it with a letter, "
        "digit or '_'",
        "flow.yaml:3:3: jobs..hidden: job name '.hidden' starts with '.': start it with a "
        "letter, digit or '_'",
        "flow.yaml:4:3: jobs.: a job name cannot be empty",
        "flow.yaml:5:3: jobs.café: job name 'café' has 'é': a name holds only ASCII letters, "
        "digits, '_', '-' and '.'",
        "flow.yaml:6:28: jobs.ok.timeout: a timeout of 0 would stop the job at once: leave "
        "`timeout` out for no limit",
        "5 problems; nothing was run",
    ]


def test_a_job_name_yaml_reads_as_no_text_is_reported_where_it_is_written() -> None:
    """`123:`, `yes:` or `~:` under `jobs:` are a number, a boolean and null to YAML: each
    reported at its own line, saying to quote it (not at the first job, as `jobs[1]`);
    with every job's name wrong there is no extra "no jobs"."""
    from helpers import problems_of

    text = "jobs:\n  ok: {run: echo}\n  123: {run: echo}\n  yes: {run: echo}\n  ~: {run: echo}\n"
    assert problems_of(text) == [
        "flow.yaml:3:3: jobs.123: YAML reads this name as the number 123: quote it",
        "flow.yaml:4:3: jobs.true: got the boolean true (YAML reads true/false/yes/no/on/off "
        "so): quote it",
        "flow.yaml:5:3: jobs.null: YAML reads this name as null (nothing): quote it, or write "
        "a name",
        "3 problems; nothing was run",
    ]
    assert problems_of("jobs:\n  -a: {run: echo}\n  1.5: {run: echo}\n") == [
        "flow.yaml:2:3: jobs.-a: job name '-a' starts with '-': start it with a letter, digit "
        "or '_'",
        "flow.yaml:3:3: jobs.1.5: YAML reads this name as the number 1.5: quote it",
        "2 problems; nothing was run",
    ]


def test_files_that_do_not_parse_are_located_with_a_way_out(tmp_path: Path) -> None:
    """A TOML error, a file that is not UTF-8 text and YAML's "mapping values" (an unquoted
    `: ` in a value) are FILE:LINE:COL lines like every flow error, each saying what to do."""
    (tmp_path / "bad.toml").write_text('[jobs.a]\nrun = "echo\n')
    (tmp_path / "binary.yaml").write_bytes(b"jobs:\n  a: {run: caf\xe9}\n")
    (tmp_path / "colon.yaml").write_text('jobs:\n  a:\n    run: echo "notify: done"\n')
    result = corral("validate", "bad.toml", "binary.yaml", "colon.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bad.toml:2:12: invalid TOML: Illegal character '\\n'",
        "binary.yaml:2:15: not UTF-8 text (byte 0xe9): a flow file is YAML, JSON or TOML "
        "written in UTF-8; is this the right file?",
        "colon.yaml:3:22: invalid YAML: mapping values are not allowed in this context (a "
        "value with `: ` in it must be quoted: run: 'echo \"a: b\"')",
    ]


def test_a_job_written_twice_is_an_error() -> None:
    from helpers import problems_of

    text = "jobs:\n  a: {run: echo first}\n  a: {run: echo second}\n"
    assert problems_of(text) == [
        "flow.yaml:3:3: invalid YAML: duplicate key 'a' (first at line 2): YAML would keep "
        "only this one, so rename or remove one of them"
    ]


# item 15: a tool call says what it ran; a CLI's own stderr noise is not narrative
def test_narrative_names_the_command_and_hides_cli_noise(tmp_path: Path) -> None:
    claude = corral("exec", "--no-store", "claude", "hi", cwd=tmp_path,
                    env=_agent_env(tmp_path, "claude_tool"))  # fmt: skip
    assert "claude | ⚙ Bash: echo hello-from-mock-tool\n" in claude.stdout
    codex = corral("exec", "--no-store", "codex", "hi", cwd=tmp_path,
                   env=_agent_env(tmp_path, "codex_tool"))  # fmt: skip
    stderr_noise = (AGENTS / "codex_tool.err").read_text().splitlines()
    assert "Reading additional input from stdin..." in stderr_noise  # the recording has it
    assert "Reading additional input from stdin" not in codex.stdout + codex.stderr
    assert "⚙ command_execution: /bin/bash -lc 'echo hello-from-mock-tool'" in codex.stdout


# item 15: what corral prints to a pipe or a CI log has no line ending in blanks (rich
# pads every cell of a table, the last column's too)
BLANKS_FLOW = """\
name: blanks
budget: {usd: 5}
jobs:
  analyze: {tool: claude, prompt: "review", budget: {usd: 1}}
  fetch: {run: "sh -c 'echo fetching; echo; echo \\"a line   \\"'"}
  lint: {run: "sh -c 'echo 3 warnings >&2; exit 1'"}
  docs: {needs: [lint], run: "echo never"}
"""


def test_nothing_corral_prints_to_a_pipe_ends_in_blanks(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(BLANKS_FLOW)
    env = _agent_env(tmp_path, "claude_tool")
    commands = [
        ["run", "flow.yaml"],  # the live view's fallback (prefixed lines), then the summary
        ["run", "flow.yaml", "--output", "grouped"],
        ["run", "flow.yaml", "-q"],
        ["plan", "flow.yaml"],
        ["validate", "flow.yaml"],
        ["runs"],
        ["usage"],
        ["usage", "--by", "job"],
    ]
    outputs = {}
    for command in commands:
        done = corral(*command, cwd=tmp_path, env=env)
        assert done.returncode in (0, 1), (command, done.stderr)
        outputs[" ".join(command)] = done.stdout + done.stderr
    run_id = json.loads(corral("runs", "--json", cwd=tmp_path).stdout)["runs"][0]["id"]
    outputs["show"] = corral("show", run_id, cwd=tmp_path).stdout
    for command, text in outputs.items():
        assert text.strip(), command
        ending = [line for line in text.splitlines() if line != line.rstrip()]
        assert not ending, (command, ending)
    # the tables were there: the summary, runs, show
    assert "job      status" in outputs["run flow.yaml"]
    assert "(exit 0)" in outputs["run flow.yaml"] and "fetch   |\n" in outputs["run flow.yaml"]
    assert "RUN " in outputs["runs"] and "JOB " in outputs["show"]


def test_runs_and_show_print_names_and_paths_as_text(tmp_path: Path) -> None:
    """A flow named `x[red]y :smile:` in a folder `a[bold]b`: `runs` and `show` print them
    as written (they were read as rich markup: `xy`, the folder `ab`)."""
    folder = tmp_path / "a[bold]b"
    folder.mkdir()
    (tmp_path / ".corral").mkdir()  # the history is kept above the folder: this test is
    # about how names are printed, not where a history may be stored
    (folder / "flow.yaml").write_text('name: "x[red]y :smile:"\njobs:\n  j: {run: "true"}\n')
    assert corral("run", "flow.yaml", cwd=folder).returncode == 0
    assert "x[red]y :smile:" in corral("runs", cwd=folder).stdout
    run_id = json.loads(corral("runs", "--json", cwd=folder).stdout)["runs"][0]["id"]
    shown = corral("show", run_id, cwd=folder).stdout
    assert f"flow:     x[red]y :smile: ({folder / 'flow.yaml'})" in shown.splitlines()
