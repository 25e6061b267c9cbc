"""`corral` (the console script, `python -m corral`) exits without the interpreter's
teardown only when that teardown would just free memory: the exit code, the output, the
`atexit` functions and the history are those of the usual exit, and anything the teardown
would still do (a file left open, a thread running, a profiler) gets the usual exit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# a command run as the console script runs it (`main()`), with what the teardown would
# do made visible: an object whose finaliser writes `torn-down` (the teardown ran) and
# an atexit function that writes `atexit` (it must run either way)
_PROBE = textwrap.dedent(
    """
    import atexit, sys, threading, time
    from pathlib import Path
    here = Path(sys.argv[1])

    class Witness:
        def __init__(self, path):
            # its own: the module's globals and builtins may be gone when it is freed
            self.path, self.open = path, open

        def __del__(self):
            self.open(self.path, "w").close()

    witness = Witness(str(here / "torn-down"))
    # the witness is in a cycle (its class's methods hold these globals) that the final
    # collection leaves alone once a run froze the collector: held by `sys`, this module
    # stays alive until the teardown wipes its globals, which frees the witness
    sys.corral_probe_main = sys.modules[__name__]
    atexit.register(lambda: (here / "atexit").write_text(""))
    how = sys.argv[2]
    import corral.cli.errors as errors
    import corral.cli.main as cli
    if how == "open-file":  # the command opens a file and leaves it open
        command = errors.run_cli

        def run_cli(*args):
            global kept
            kept = open(here / "kept", "w")
            kept.write("buffered")
            command(*args)

        errors.run_cli = run_cli
    elif how == "thread":
        threading.Thread(target=time.sleep, args=(1.0,)).start()  # outlives the command
    elif how == "message":  # an exit with a message instead of a code

        def run_cli(*args):
            sys.exit("the message")

        errors.run_cli = run_cli
    sys.argv = ["corral", *sys.argv[3:]]
    cli.main()
    """
)


def probe(folder: Path, how: str, *args: str) -> tuple[int, set[str], str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(folder), how, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    marks = {name for name in ("torn-down", "atexit") if (folder / name).exists()}
    return done.returncode, marks, done.stdout, done.stderr


def test_a_command_that_left_nothing_exits_without_the_teardown(tmp_path: Path) -> None:
    code, marks, out, _ = probe(tmp_path, "plain", "exec", "-q", "--", "true")
    assert (code, marks) == (0, {"atexit"})
    assert "succeeded" in out  # its output was flushed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("exec", "-q", "--", "false"), 1),  # a failed job
        (("exec", "-q", "--", "sh", "-c", "exit 7"), 1),
        (("exec",), 2),  # a usage error
        (("runs", "--limit", "-3"), 2),
    ],
)
def test_the_exit_code_is_the_usual_one(
    tmp_path: Path, args: tuple[str, ...], expected: int
) -> None:
    code, marks, _, _ = probe(tmp_path, "plain", *args)
    assert code == expected and "atexit" in marks


@pytest.mark.parametrize("how", ["open-file", "thread", "message"])
def test_anything_left_for_the_teardown_gets_the_usual_exit(tmp_path: Path, how: str) -> None:
    args = ("--version",) if how in ("message", "thread") else ("exec", "-q", "--", "true")
    code, marks, _, err = probe(tmp_path, how, *args)
    assert marks == {"atexit", "torn-down"}, (how, err)
    if how == "open-file":
        assert (tmp_path / "kept").read_text() == "buffered"  # written by the teardown
    if how == "message":
        assert code == 1 and "the message" in err
    else:
        assert code == 0


def test_a_profiler_still_writes_its_data(tmp_path: Path) -> None:
    # cProfile writes its file after the command's SystemExit reached it
    out = tmp_path / "exec.prof"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(out),
            "-m",
            "corral",
            "exec",
            "-q",
            "--",
            "true",
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0


def _recorded(folder: Path, argv: list[str]) -> tuple[str, list[tuple[str, str]]]:
    """The run's id and its events as (kind, job), read back with `corral export`."""
    shown = subprocess.run(
        [*argv, "runs", "--json"], cwd=folder, capture_output=True, timeout=60, check=True
    )
    (run,) = json.loads(shown.stdout)["runs"]
    exported = subprocess.run(
        [*argv, "export", run["id"], "--format", "jsonl"],
        cwd=folder,
        capture_output=True,
        timeout=60,
        check=True,
    )
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    return run["id"], [(e["event"]["kind"], e["event"]["job"]) for e in events]


def test_the_history_and_logs_are_those_of_the_usual_exit(tmp_path: Path) -> None:
    fast = [sys.executable, "-m", "corral"]  # main(): the exit without teardown
    usual = [
        sys.executable,
        "-c",
        "import sys; from corral.cli.main import main; main(sys.argv[1:])",
    ]
    script = "echo out; echo err >&2; exit 3"
    found = {}
    for name, argv in (("fast", fast), ("usual", usual)):
        folder = tmp_path / name
        folder.mkdir()
        done = subprocess.run(
            [*argv, "exec", "-q", "--name", "j", "--", "sh", "-c", script],
            cwd=folder,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        run_id, kinds = _recorded(folder, usual)
        logs = subprocess.run(
            [*usual, "logs", run_id, "j"],
            cwd=folder,
            capture_output=True,
            timeout=60,
            check=False,
        )
        found[name] = (kinds, logs.returncode, logs.stdout)
    assert found["fast"] == found["usual"]
    assert ("job.finished", "j") in found["fast"][0]
    assert found["fast"][2] == b"out\nstderr| err\n"
