#!/usr/bin/env python3
"""The resource figures of docs/security.md, measured (not a test: shared machines are noisy).

    scripts/security_measure.py agent-line [MB]        corral's peak RSS for one agent
                                                       line of MB megabytes (default 400),
                                                       against a 1 MB line in the same run
    scripts/security_measure.py fds [JOBS] [J] [NOFILE] JOBS short jobs at -j J under
                                                       `ulimit -n NOFILE` (2000 500 1024)

Each prints one JSON line. corral's own peak RSS is its VmHWM, polled every 50 ms
(the agent's memory is not counted).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAKE_AGENT = ROOT / "tests" / "fakes" / "fake_agent.py"
RECORDING = ROOT / "tests" / "data" / "agents" / "claude_tool.out"


def _peak_rss(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, str]:
    """Run argv; its exit code, wall seconds and own VmHWM (MB), and its stdout."""
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.05)
    out = process.stdout.read() if process.stdout else ""
    return peak // 1024, time.monotonic() - started, out


def _agent_run(folder: Path, megabytes: float) -> dict[str, object]:
    lines = RECORDING.read_text().splitlines()
    padded = []
    for line in lines:
        event = json.loads(line)
        if event.get("type") == "user":  # the tool result: make it huge
            event["message"]["content"][0]["content"] = "x" * int(megabytes * 1_000_000)
        padded.append(json.dumps(event))
    (folder / "big.out").write_text("\n".join(padded) + "\n")
    (folder / "flow.yaml").write_text("jobs:\n  big: {tool: claude, prompt: go}\n")
    env = {
        **os.environ,
        "FAKE_AGENT_DIR": str(folder),
        "FAKE_AGENT_SCRIPT": "big",
        "CORRAL_CLAUDE_BIN": str(FAKE_AGENT),
    }
    argv = [sys.executable, "-m", "corral", "run", "flow.yaml", "--json", "--no-store"]
    argv += ["--output", "quiet"]
    peak, wall, out = _peak_rss(argv, folder, env)
    job = json.loads(out)["jobs"][0]
    return {
        "line_mb": megabytes,
        "peak_rss_mb": peak,
        "wall_s": round(wall, 1),
        "status": job["status"],
        "cost_usd": (job.get("cost") or {}).get("usd"),
    }


def agent_line(megabytes: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = _agent_run(Path(scratch), 1)
    with tempfile.TemporaryDirectory() as scratch:
        big = _agent_run(Path(scratch), megabytes)
    ratio = round(big["peak_rss_mb"] / max(megabytes, 1), 2)  # type: ignore[operator]
    print(
        json.dumps(
            {
                "case": "agent-line",
                "baseline": base,
                "big": big,
                "rss_per_line_size": ratio,
                "target_mb": 2 * megabytes,
            }
        )
    )


def fds(jobs: int, concurrency: int, nofile: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        flow = {
            "jobs": {
                f"j{i}": {"run": ["sh", "-c", "echo start; sleep 0.5; echo end"]}
                for i in range(jobs)
            }
        }
        (folder / "flow.json").write_text(json.dumps(flow))

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "corral",
                "run",
                "flow.json",
                "-j",
                str(concurrency),
                "--json",
                "--output",
                "quiet",
            ],
            cwd=folder,
            capture_output=True,
            text=True,
            preexec_fn=limit,
            check=False,
        )
        statuses = [j["status"] for j in json.loads(result.stdout)["jobs"]] if result.stdout else []
        print(
            json.dumps(
                {
                    "case": "fds",
                    "jobs": jobs,
                    "j": concurrency,
                    "nofile": nofile,
                    "rc": result.returncode,
                    "succeeded": statuses.count("succeeded"),
                    "wall_s": round(time.monotonic() - started, 1),
                    "warning": [x for x in result.stderr.splitlines() if "at once" in x],
                }
            )
        )


def main(args: list[str]) -> int:
    if not args or args[0] not in ("agent-line", "fds"):
        print(__doc__, file=sys.stderr)
        return 2
    if args[0] == "agent-line":
        agent_line(float(args[1]) if len(args) > 1 else 400)
    else:
        numbers = [int(a) for a in args[1:]] + [2000, 500, 1024][len(args) - 1 :]
        fds(*numbers[:3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
