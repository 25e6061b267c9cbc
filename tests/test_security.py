"""Safe by default (docs/security.md): every payload of the reliability audit (sections 3
and 6) as a case. Interpolated values stay one argument, job output never drives the
terminal, no secret is written anywhere, bad data fails one job."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import corral, wait_until, write_flow

# the audit's payloads (6a): command substitution, backticks, `;`, a quote break-out
SUBST = (
    "$(touch {d}/pwned-subst) `touch {d}/pwned-backtick`; touch {d}/pwned-semi && echo \"dq\" 'sq'"
)
QUOTE = "x'; touch {d}/pwned-quote; echo '"
SPLIT = "a 'b c' ; touch {d}/pwned-split --version"


def _payloads(tmp_path: Path) -> dict[str, str]:
    found = {}
    for name, text in (("subst", SUBST), ("quote", QUOTE), ("split", SPLIT)):
        value = text.format(d=tmp_path)
        (tmp_path / f"{name}.txt").write_text(value + "\n")
        found[name] = value
    return found


def _pwned(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.glob("pwned-*"))


def _show(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return corral(*args, cwd=tmp_path)


def test_no_payload_runs_and_each_value_is_one_argument(tmp_path: Path) -> None:
    values = _payloads(tmp_path)
    echo = f"{sys.executable} -c 'import sys, json; print(json.dumps(sys.argv[1:]))'"
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          up: {{run: cat subst.txt}}
          up2: {{run: cat quote.txt}}
          up3: {{run: cat split.txt}}
          unquoted: {{needs: [up], shell: true, run: "echo result={{{{ jobs.up.result }}}}"}}
          single: {{needs: [up2], shell: true, run: "echo q='{{{{ jobs.up2.result }}}}'"}}
          double: {{needs: [up], shell: true, run: "echo \\"{{{{ jobs.up.result }}}}\\""}}
          github: {{needs: [up], shell: true, run: "echo ${{{{ jobs.up.result }}}}"}}
          words: {{needs: [up3], run: "{echo} {{{{ jobs.up3.result }}}}"}}
          listed: {{needs: [up], run: [sh, -c, 'echo "$1"', x, "{{{{ jobs.up.result }}}}"]}}
          viaenv:
            {{needs: [up], shell: true, env: {{R: "{{{{ jobs.up.result }}}}"}}, run: 'echo "$R"'}}
        """,
    )
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _pwned(tmp_path) == []
    jobs = {j["name"]: j for j in json.loads(result.stdout)["jobs"]}
    logs = {n: (Path(j["log_dir"]) / "stdout.log").read_text() for n, j in jobs.items()}
    assert logs["unquoted"] == f"result={values['subst']}\n"
    assert logs["single"] == f"q={values['quote']}\n"
    assert logs["double"] == logs["github"] == logs["listed"] == logs["viaenv"]
    assert logs["double"] == values["subst"] + "\n"
    # no shell: the value is one argument, never an extra `--version`
    assert json.loads(logs["words"]) == [values["split"]]


def test_unsafe_raw_is_the_explicit_opt_out_and_validate_names_it(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          up: {run: echo a b}
          raw: {needs: [up], shell: true, run: "printf '%s|' {{ jobs.up.result | unsafe_raw }}"}
          quoted: {needs: [up], shell: true, run: "printf '%s|' {{ jobs.up.result }}"}
        """,
    )
    checked = corral("validate", str(flow), cwd=tmp_path)
    assert checked.returncode == 0
    assert "flow.yaml:4:" in checked.stderr and "unsafe_raw" in checked.stderr
    assert checked.stderr.count("warning: `shell: true`") == 2
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path)
    jobs = {j["name"]: j for j in json.loads(result.stdout)["jobs"]}
    assert (Path(jobs["raw"]["log_dir"]) / "stdout.log").read_text() == "a|b|"
    assert (Path(jobs["quoted"]["log_dir"]) / "stdout.log").read_text() == "a b|"


def test_validate_is_quiet_about_safe_shell_commands(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          up: {run: echo x}
          down:
            needs: [up]
            shell: true
            env: {R: "{{ jobs.up.result }}"}
            run: 'echo "$R" {{ matrix.m }}'
            matrix: {m: [1]}
        """,
    )
    checked = corral("validate", str(flow), cwd=tmp_path)
    assert checked.returncode == 0 and "warning" not in checked.stderr


# -- one bad value fails one job (6b', 6d) ------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "template", "kind", "says"),
    [
        ("echo 0", '["echo", "{{ 100 / (jobs.up.result|int) }}"]', "template", "ZeroDivisionError"),
        ("echo 0", '["echo", "{{ range(10**7)|length }}"]', "template", "range"),
        # (YAML reads \\\\ as one backslash: printf gets \\0)
        ("printf 'a\\\\0b\\\\n'", '["echo", "{{ jobs.up.result }}"]', "input", "NUL"),
        ("printf 'a\\\\0b\\\\n'", '"echo {{ jobs.up.result }}"', "input", "NUL"),
    ],
)
def test_a_bad_value_fails_its_job_and_the_run_carries_on(
    tmp_path: Path, upstream: str, template: str, kind: str, says: str
) -> None:
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          up: {{run: [sh, -c, "{upstream}"]}}
          down: {{needs: [up], run: {template}}}
          other: {{run: [sh, -c, "sleep 0.5; echo fine"]}}
        """,
    )
    result = corral("run", str(flow), "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    jobs = {j["name"]: j for j in summary["jobs"]}
    assert jobs["down"]["status"] == "failed"
    assert jobs["down"]["error_kind"] == kind
    assert says in jobs["down"]["error"]
    assert jobs["other"]["status"] == jobs["up"]["status"] == "succeeded"
    shown = json.loads(corral("show", summary["run_id"], "--json", cwd=tmp_path).stdout)
    assert shown["run"]["status"] == "failed"


def test_validate_rejects_a_name_no_file_system_can_hold(tmp_path: Path) -> None:
    name = "n" * 256
    flow = write_flow(tmp_path, f"jobs:\n  {name}: {{run: echo x}}\n  ok: {{run: echo y}}\n")
    checked = corral("validate", str(flow), cwd=tmp_path)
    assert checked.returncode == 2
    assert "256 bytes long" in checked.stderr and "Traceback" not in checked.stderr
    fine = write_flow(tmp_path, f"jobs:\n  {'n' * 255}: {{run: echo x}}\n", "ok.yaml")
    assert corral("run", str(fine), "--no-store", cwd=tmp_path).returncode == 0


def test_a_matrix_over_the_maximum_is_an_error_at_load(tmp_path: Path) -> None:
    axes = ", ".join(f"k{i}: [0,1,2,3,4,5,6,7,8,9]" for i in range(7))
    flow = write_flow(tmp_path, f"jobs:\n  m: {{run: echo x, matrix: {{{axes}}}}}\n")
    checked = corral("validate", str(flow), cwd=tmp_path, timeout=20)
    assert checked.returncode == 2
    assert "10,000,000 combinations" in checked.stderr or "10,000" in checked.stderr


# -- the terminal (3e) ---------------------------------------------------------------

SEQUENCES = [
    "\x1b]0;PWNED\x07",  # OSC 0 title, BEL-terminated
    "\x1b]0;PWNED\x1b\\",  # OSC 0 title, ST-terminated
    "\x1b]52;c;cHduZWQ=\x07",  # OSC 52 clipboard write
    "\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1b[2J\x1b[H",  # clear screen
    "\x1b[1A\x1b[2K",  # cursor up + erase line
    "\x1b[8m",  # conceal
    "visible-secret\rFAKE-OK",  # carriage return overwrite
    "\x1b[6n",  # a status query (DSR)
    "\x9b31m",  # C1 CSI
]
CONTROLS = set("\x1b\x07\r\x9b")


def _hostile(tmp_path: Path, pause: float = 0.0) -> Path:
    """A flow whose job prints every sequence (`pause` between them: the live view shows
    only the last line of a job, at 4 frames a second)."""
    script = tmp_path / "hostile.py"
    script.write_text(
        "import sys, time\n"
        f"for s in {SEQUENCES!r}:\n"
        "    sys.stdout.write(s + '\\n')\n"
        "    sys.stdout.flush()\n"
        f"    time.sleep({pause})\n"
        "sys.stdout.write('[bold red]markup[/]\\n')\n"
    )
    return write_flow(
        tmp_path, f"jobs:\n  bad: {{run: [{sys.executable}, {script}]}}\n  ok: {{run: echo ok}}\n"
    )


def _on_a_tty(argv: list[str], cwd: Path) -> bytes:
    """Run argv with stdout and stderr on a pseudo-terminal; all it wrote to it."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "45"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks)


def _reaching(output: bytes) -> list[str]:
    """The job's sequences that reached the terminal as they were printed."""
    return [s for s in SEQUENCES if s.encode() in output]


@pytest.mark.parametrize("mode", ["prefixed", "grouped", "live"])
def test_no_control_sequence_reaches_the_terminal(tmp_path: Path, mode: str) -> None:
    flow = _hostile(tmp_path, pause=0.4 if mode == "live" else 0.0)
    argv = [sys.executable, "-m", "corral", "run", str(flow), "--no-store"]
    if mode != "live":
        argv += ["--output", mode]
    output = _on_a_tty(argv, tmp_path)
    # the live view moves the cursor up and erases lines itself to redraw its table
    own = {"\x1b[1A\x1b[2K"} if mode == "live" else set()
    assert [s for s in _reaching(output) if s not in own] == []
    assert b"\\x1b]" in output  # shown, visibly
    assert b"\x1b]" not in output and b"\x1b[2J" not in output and b"\x9b" not in output


def test_logs_neutralised_on_a_tty_byte_exact_to_a_pipe_raw_on_request(tmp_path: Path) -> None:
    flow = _hostile(tmp_path)
    result = corral("run", str(flow), "--json", "--output", "quiet", cwd=tmp_path)
    run_id = json.loads(result.stdout)["run_id"]
    logged = (Path(json.loads(result.stdout)["jobs"][0]["log_dir"]) / "stdout.log").read_bytes()
    piped = subprocess.run(
        [sys.executable, "-m", "corral", "logs", run_id, "bad"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    assert piped == logged
    base = [sys.executable, "-m", "corral", "logs", run_id, "bad"]
    shown = _on_a_tty(base, tmp_path)
    # (the terminal itself turns each \n into \r\n)
    text = shown.replace(b"\r\n", b"\n").decode(errors="replace")
    assert _reaching(shown) == [] and not CONTROLS & set(text)
    assert b"\\x1b]52;c;cHduZWQ=\\x07" in shown
    raw = _on_a_tty([*base, "--raw"], tmp_path)
    assert b"\x1b]52;c;cHduZWQ=\x07" in raw


# -- secrets at rest (6c) ------------------------------------------------------------

PLANTED = {
    "parent": "sk-ant-secret123parent",
    "token": "ghp_secretparentTOKEN",
    "literal": "sk-ant-JOBLITERAL123",
    "literal2": "ghp_JOBLITERALxyz",
    "agent": "sk-ant-AGENTJOBsecret",
    "fail": "ghp_FAILJOBsecret",
    "marked": "hunter2-marked-value",
    "custom": "custom-pattern-value",
    "pw": "S3cretPWstore",
}


def _everything_written(tmp_path: Path) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and ".corral" in p.parts
    }


def test_no_planted_secret_is_written_anywhere(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        f"""
        secret_names: ["*_CUSTOM"]
        jobs:
          literal:
            env: {{OPENAI_API_KEY: {PLANTED["literal"]}, GITHUB_TOKEN: {PLANTED["literal2"]}}}
            run: "true"
          copy: {{env: {{TOKEN_COPY: "${{GITHUB_TOKEN}}"}}, run: "true"}}
          templated: {{run: [sh, -c, "true", "{{{{ env.ANTHROPIC_API_KEY }}}}"]}}
          shelled: {{shell: true, run: "test -n {{{{ env.ANTHROPIC_API_KEY }}}}"}}
          marked:
            env: {{DB_LOGIN: {PLANTED["marked"]}, X_CUSTOM: {PLANTED["custom"]}}}
            secret_env: [DB_LOGIN]
            run: "true"
          failing: {{env: {{GITHUB_TOKEN: {PLANTED["fail"]}}}, run: [sh, -c, "exit 3"]}}
          bad_template: {{run: "echo {{{{ env.ANTHROPIC_API_KEY ~ (1/0) }}}}"}}
        """,
    )
    env = {"ANTHROPIC_API_KEY": PLANTED["parent"], "GITHUB_TOKEN": PLANTED["token"]}
    store = tmp_path / ".corral" / "corral.db"
    run = corral("run", str(flow), "--json", cwd=tmp_path, env=env)
    assert run.returncode == 1, run.stderr
    run_id = json.loads(run.stdout)["run_id"]
    outputs = [run.stdout, run.stderr]
    for args in (
        ("show", run_id, "--json"),
        ("show", run_id),
        ("runs", "--json"),
        ("export", run_id, "--format", "json"),
        ("export", run_id, "--format", "jsonl"),
        ("export", run_id, "--format", "csv"),
    ):
        shown = corral(*args, cwd=tmp_path)
        assert shown.returncode == 0, (args, shown.stderr)
        outputs += [shown.stdout, shown.stderr]
    # a store URL given on the command line keeps no password
    url = f"sqlite://user:{PLANTED['pw']}@/{store}"
    other = corral("run", str(flow), "--store", url, "--json", "--output", "quiet", cwd=tmp_path)
    outputs += [other.stdout, other.stderr]
    for bad in (f"mysql://u:{PLANTED['pw']}@h/db", f"sqlite://u:{PLANTED['pw']}@h:x/db"):
        refused = corral("runs", "--store", bad, cwd=tmp_path)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        outputs += [refused.stdout, refused.stderr]
    written = _everything_written(tmp_path)
    assert any(p.endswith("joblog.tsv") for p in written)
    found = [
        (name, where)
        for name, secret in PLANTED.items()
        for where, data in [*written.items(), *enumerate(outputs)]
        if secret.encode() in (data if isinstance(data, bytes) else data.encode())
    ]
    assert found == []
    assert "***" in corral("show", run_id, "--json", cwd=tmp_path).stdout


def test_history_and_logs_are_private_whatever_the_umask(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "jobs:\n  a: {run: echo a}\n")
    old = os.umask(0o022)
    try:
        result = corral("run", str(flow), "--json", cwd=tmp_path)
    finally:
        os.umask(old)
    assert result.returncode == 0
    corral_dir = tmp_path / ".corral"
    loose = []
    for path in [corral_dir, *corral_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if (path.is_dir() and path.parent.name == "runs") or path == corral_dir:
            if mode != 0o700:
                loose.append((str(path), oct(mode)))
        elif path.is_file() and mode & 0o077:
            loose.append((str(path), oct(mode)))
    assert loose == []


# -- resources (5c, 6e, 7b, 7c, 7f) ---------------------------------------------------


def test_more_jobs_than_descriptors_allow_all_complete(tmp_path: Path) -> None:
    import resource

    jobs = {f"j{i}": {"run": ["sh", "-c", "sleep 0.2"]} for i in range(150)}
    (tmp_path / "flow.json").write_text(json.dumps({"jobs": jobs}))

    def small_limit() -> None:  # as `ulimit -n 200` (soft and hard) would
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    result = subprocess.run(
        [sys.executable, "-m", "corral", "run", "flow.json", "-j", "150", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=small_limit,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "jobs run at once, not 150: the open-file limit is 200" in result.stderr
    statuses = [j["status"] for j in json.loads(result.stdout)["jobs"]]
    assert statuses == ["succeeded"] * 150


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one() -> None:
    code = (
        "import resource; from corral.execute.admission import raise_fd_limit; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096)); "
        "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["4096", "4096"]


def test_run_ids_carry_80_random_bits_and_a_folder_is_never_shared(tmp_path: Path) -> None:
    import re

    from corral.app.header import new_run_id
    from corral.app.run import _claim_run_folder
    from corral.errors import UsageError

    ids = {new_run_id(now=1_700_000_000) for _ in range(20_000)}
    assert len(ids) == 20_000  # one second, no collision
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-hjkmnp-tv-z]{16}", i) for i in ids)
    folder = tmp_path / ".corral" / "runs" / "r1"
    _claim_run_folder(tmp_path, folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    with pytest.raises(UsageError, match="already has a folder"):
        _claim_run_folder(tmp_path, folder)


def test_gc_never_touches_a_live_run(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "jobs:\n  old: {run: echo old}\n", name="old.yaml")
    assert corral("run", str(flow), cwd=tmp_path).returncode == 0
    # the live run's job waits until the test lets it go: alive for as long as gc takes
    live_flow = write_flow(
        tmp_path,
        "jobs:\n  slow: {run: [sh, -c, 'while [ ! -e release ]; do sleep 0.05; done']}\n",
    )
    live = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", str(live_flow), "--output", "quiet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import time

        runs_dir = tmp_path / ".corral" / "runs"
        deadline = time.monotonic() + 20
        while len(list(runs_dir.glob("*/slow"))) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        swept = corral("gc", "--older-than", "0s", cwd=tmp_path)
        assert swept.returncode == 0, swept.stderr
        assert "kept run" in swept.stdout and "it is running" in swept.stdout
        assert "deleted 1 run" in swept.stdout
        assert list(runs_dir.glob("*/slow"))
    finally:
        (tmp_path / "release").touch()
        assert live.wait(timeout=60) == 0
    listed = json.loads(corral("runs", "--json", cwd=tmp_path).stdout)
    assert [r["status"] for r in listed["runs"]] == ["succeeded"]


def test_provider_caps_bodies_and_connections() -> None:
    import http.client
    import socket

    from corral.provider import SimulatedProvider

    with SimulatedProvider(max_body=1024, max_connections=3) as provider:
        host, port = provider.url.removeprefix("http://").split(":")
        big = http.client.HTTPConnection(host, int(port), timeout=10)
        big.putrequest("POST", "/v1/messages")
        big.putheader("Content-Length", str(4 * 1024**3))  # claims 4 GiB, sends nothing
        big.endheaders()
        assert big.getresponse().status == 413
        big.close()
        # its handler gives its slot back only as it ends: a connection made before then
        # would take the 503 meant for the fourth (seen once in CI)
        wait_until(lambda: provider.active_connections == 0, "the 413's handler to end")
        idle = [socket.create_connection((host, int(port))) for _ in range(3)]
        try:
            # each counted connection holds one of the 3 slots: the next one is refused
            wait_until(lambda: provider.active_connections == 3, "3 idle connections")
            with socket.create_connection((host, int(port)), timeout=10) as extra:
                assert extra.recv(64).startswith(b"HTTP/1.1 503")
        finally:
            for sock in idle:
                sock.close()


def test_provider_serve_warns_on_a_non_loopback_host(tmp_path: Path) -> None:
    import signal

    process = subprocess.Popen(
        [sys.executable, "-m", "corral", "provider", "serve", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # printed before it serves
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert "WARNING: --host 0.0.0.0 is reachable from other machines" in first
