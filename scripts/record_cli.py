#!/usr/bin/env python3
"""Record what a real agent CLI prints in each case, against the simulated provider.

    scripts/record_cli.py TOOL OUT_DIR [--bin-dir DIR] [--cases text,usage,...]

For each case (text, usage, tool, 429, 401, hang) it runs TOOL through its corral adapter
(the argv `corral run` would use) with the adapter's rehearsal set-up, in a private HOME,
and writes OUT_DIR/<tool>_<case>.out (stdout), .err (stderr), .session (the records the
adapter reads from the CLI's own files, if any) and OUT_DIR/PROVENANCE.json: the CLI
version, the command of each case, its exit code and duration, and the date. Temporary
paths in the outputs are rewritten to /home/dev/demo. Needs the CLI installed
(scripts/install-clis.sh prints its bin folder).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from corral.config.schema import JobSpec
from corral.provider import Scenario, ScenarioUsage, SimulatedProvider
from corral.tools import get_tool, rehearsal_for

CHOSEN = ScenarioUsage(input=123, output=45, cache_read=6789, cache_write=1011, reasoning=7)
CASES: dict[str, tuple[Scenario, dict[str, object]]] = {
    "text": (Scenario.answer("Hello from the corral simulated provider!"), {}),
    "usage": (Scenario.answer("Counted.", usage=CHOSEN), {}),
    "tool": (
        Scenario.tool("echo corral-recorded-tool", text="Ran it."),
        {"mode": "tool", "command": "echo corral-recorded-tool"},
    ),
    "429": (Scenario.error(429), {"error": 429}),
    "401": (Scenario.error(401), {"error": 401}),
    "hang": (Scenario.hang(), {"mode": "hang"}),
}
HANG_SECONDS = 8.0  # a hung run is stopped (SIGTERM to its group) after this long
TIMEOUT = 120.0
DEMO = "/home/dev/demo"


def record(tool_name: str, out: Path, bin_dir: Path, cases: list[str]) -> dict[str, object]:
    tool = get_tool(tool_name)
    executable = str(bin_dir / tool.executable_names[0])
    version = tool.version(executable)
    out.mkdir(parents=True, exist_ok=True)
    provenance: dict[str, object] = {
        "tool": tool_name,
        "version": version,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "how": "scripts/record_cli.py: the adapter's argv and rehearsal set-up, stdin closed",
        "cases": {},
    }
    with SimulatedProvider() as provider, tempfile.TemporaryDirectory() as scratch:
        for case in cases:
            scenario, rehearse = CASES[case]
            provider.add_scenario(case, scenario)
            root = Path(scratch) / case
            home, workspace = root / "home", root / "work"
            workspace.mkdir(parents=True)
            spec = JobSpec(tool=tool_name, prompt="Do the thing.", rehearse=rehearse or None)
            setup = rehearsal_for(tool, spec, base_url=provider.scenario_url(case), home=home)
            spec = spec.model_copy(
                update={**setup.spec, "home": str(home), "extra_args": list(setup.extra_args)}
            )
            invocation = tool.build(spec, executable=executable, resume_session=None)
            env = {**os.environ, **invocation.env, **setup.env, "PWD": str(workspace)}
            started = time.monotonic()
            code, stdout, stderr = _run(list(invocation.argv), workspace, env, case == "hang")
            seconds = round(time.monotonic() - started, 1)
            session_id = _session_id(tool_name, stdout)
            report = tool.session_report(env, session_id, model=spec.model)
            files = {".out": stdout, ".err": stderr}
            if report is not None and report.lines:
                files[".session"] = "".join(
                    line if line.endswith("\n") else line + "\n" for line in report.lines
                )
            for suffix, text in files.items():
                (out / f"{tool_name}_{case}{suffix}").write_text(text.replace(str(root), DEMO))
            argv = [Path(invocation.argv[0]).name, *invocation.argv[1:]]
            provenance["cases"][case] = {  # type: ignore[index]  # built just above
                "command": " ".join(a.replace(str(root), DEMO) for a in argv),
                "env": sorted(setup.env),
                "exit_code": code,
                "seconds": seconds,
                "requests": len(provider.requests(case)),
                "model": spec.model,
                "session_model": report.model if report else None,
            }
            print(f"{tool_name} {case}: exit {code} in {seconds}s", file=sys.stderr)
    (out / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def _run(argv: list[str], cwd: Path, env: dict[str, str], hang: bool) -> tuple[int, str, str]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True,
        )  # fmt: skip
        try:
            process.wait(HANG_SECONDS if hang else TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read().decode(), err.read().decode()


def _session_id(tool: str, stdout: str) -> str | None:
    """The session id the CLI printed (Codex `thread_id`, Copilot `sessionId` ...)."""
    for line in reversed(stdout.splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            for key in ("sessionId", "thread_id", "session_id", "sessionID"):
                if isinstance(event.get(key), str):
                    return str(event[key])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool")
    parser.add_argument("out", type=Path)
    parser.add_argument("--bin-dir", type=Path, default=None)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    bin_dir = args.bin_dir or Path(
        subprocess.run(
            [str(Path(__file__).with_name("install-clis.sh"))],
            check=True, capture_output=True, text=True,
        ).stdout.split()[-1]
    )  # fmt: skip
    record(args.tool, args.out, bin_dir, args.cases.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
