#!/usr/bin/env python3
"""A fake agent CLI: ignores its arguments and replays a recorded output.

Environment: FAKE_AGENT_DIR holds the recordings; FAKE_AGENT_SCRIPT picks one per
job as `NAME.out` (stdout), optional `NAME.err` (stderr) and `NAME.rc` (exit code);
FAKE_AGENT_PACE is the pause between lines; FAKE_AGENT_ARGS, if set, is a file the
arguments are appended to (one JSON list per call), so tests can check the argv.
FAKE_AGENT_HOLD_LAST pauses that many seconds before the last line (an agent that is
still working when a test expects corral to stop it, however slow the machine is).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    folder = Path(os.environ["FAKE_AGENT_DIR"])
    name = os.environ["FAKE_AGENT_SCRIPT"]
    pace = float(os.environ.get("FAKE_AGENT_PACE", "0"))
    if log := os.environ.get("FAKE_AGENT_ARGS"):
        with open(log, "a") as handle:  # append one line per call
            handle.write(json.dumps(sys.argv[1:]) + "\n")
    if "--version" in sys.argv[1:]:
        print("9.9.9 (fake)")
        return 0
    hold_last = float(os.environ.get("FAKE_AGENT_HOLD_LAST", "0"))
    lines = (folder / f"{name}.out").read_bytes().splitlines(keepends=True)
    for index, raw in enumerate(lines):
        if hold_last and index == len(lines) - 1:
            time.sleep(hold_last)
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        if pace:
            time.sleep(pace)
    err = folder / f"{name}.err"
    if err.exists():
        sys.stderr.buffer.write(err.read_bytes())
        sys.stderr.buffer.flush()
    if hang := os.environ.get("FAKE_AGENT_LINGER"):
        time.sleep(float(hang))
    rc = folder / f"{name}.rc"
    return int(rc.read_text().strip()) if rc.exists() else 0


if __name__ == "__main__":
    sys.exit(main())
