#!/usr/bin/env python3
"""A fake CLI for tests: behaves badly on demand.

fake_cli.py echo TEXT...            print the words, exit 0
fake_cli.py exit CODE               exit with CODE
fake_cli.py hang [TEXT]             print TEXT (if any), then sleep forever
fake_cli.py ignore-term             ignore SIGTERM, print "ready", sleep forever
fake_cli.py bigline MB [--no-newline]  print one line of MB megabytes
fake_cli.py lines N SIZE            print N lines of SIZE bytes of JSON
fake_cli.py grandchildren N [--setsid] [--exit]  spawn N sleeping grandchildren
fake_cli.py die-midline TEXT        print TEXT without newline, then SIGKILL itself
fake_cli.py binary                  print bytes that are not UTF-8
fake_cli.py replay FILE [--pace S] [--stderr FILE] [--exit CODE] [--linger S]
fake_cli.py slow N DELAY            print N lines, DELAY seconds apart
fake_cli.py span FILE SECONDS       sleep, then append "start end" to FILE
fake_cli.py env NAME...             print NAME=value for each variable
fake_cli.py stdin                   print what stdin gives (must be empty: closed)
fake_cli.py flaky FILE CODE         fail with CODE the first time (FILE marks it), then succeed
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def main(argv: list[str]) -> int:  # one branch per mode
    mode, args = argv[0], argv[1:]
    out = sys.stdout
    if mode == "echo":
        print(" ".join(args), flush=True)
        return 0
    if mode == "exit":
        return int(args[0])
    if mode == "hang":
        if args:
            print(" ".join(args), flush=True)
        while True:
            time.sleep(3600)
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        while True:
            time.sleep(3600)
    if mode == "bigline":
        size = int(float(args[0]) * 1024 * 1024)
        chunk = b"x" * 65536
        buf = sys.stdout.buffer
        buf.write(b'{"big":"')
        written = 8
        while written < size - 2:
            piece = chunk[: min(len(chunk), size - 2 - written)]
            buf.write(piece)
            written += len(piece)
        buf.write(b'"}')
        if "--no-newline" not in args:
            buf.write(b"\n")
        buf.write(b"after\n" if "--no-newline" not in args else b"")
        buf.flush()
        return 0
    if mode == "lines":
        count, size = int(args[0]), int(args[1])
        pad = "y" * max(size - 24, 0)  # a line of exactly SIZE bytes
        buf = sys.stdout.buffer
        for index in range(count):
            buf.write(f'{{"i":{index:>10},"p":"{pad}"}}\n'.encode())
        buf.flush()
        return 0
    if mode == "grandchildren":
        count = int(args[0])
        for _ in range(count):
            subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(3600)"],
                start_new_session="--setsid" in args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        print(f"spawned {count}", flush=True)
        if "--exit" in args:
            return 0
        while True:
            time.sleep(3600)
    if mode == "die-midline":
        out.write(" ".join(args))
        out.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "binary":
        sys.stdout.buffer.write(b"ok \xff\xfe bad \xc3( end\n")
        sys.stdout.buffer.flush()
        return 0
    if mode == "replay":
        return replay(args)
    if mode == "slow":
        for index in range(int(args[0])):
            print(f"line {index}", flush=True)
            time.sleep(float(args[1]))
        return 0
    if mode == "span":
        started = time.time()
        time.sleep(float(args[1]))
        with open(args[0], "a") as handle:  # one line per job, appended
            handle.write(f"{started} {time.time()}\n")
        return 0
    if mode == "env":
        for name in args:
            print(f"{name}={os.environ.get(name, '<unset>')}", flush=True)
        return 0
    if mode == "stdin":
        data = sys.stdin.read()
        print(f"stdin={data!r}", flush=True)
        return 0
    if mode == "flaky":
        marker, code = args[0], int(args[1])
        if not os.path.exists(marker):
            open(marker, "w").close()  # a marker file, closed at once
            print("failing this time", flush=True)
            return code
        print("worked", flush=True)
        return 0
    print(f"fake_cli: unknown mode {mode}", file=sys.stderr)
    return 2


def replay(args: list[str]) -> int:
    path = args[0]
    pace = float(_opt(args, "--pace", "0"))
    stderr = _opt(args, "--stderr", "")
    code = int(_opt(args, "--exit", "0"))
    linger = float(_opt(args, "--linger", "0"))
    with open(path, "rb") as handle:  # plain open is clearest here
        for raw in handle:
            sys.stdout.buffer.write(raw)
            sys.stdout.buffer.flush()
            if pace:
                time.sleep(pace)
    if stderr:
        with open(stderr, "rb") as handle:
            sys.stderr.buffer.write(handle.read())
            sys.stderr.buffer.flush()
    if linger:
        time.sleep(linger)
    return code


def _opt(args: list[str], name: str, default: str) -> str:
    return args[args.index(name) + 1] if name in args else default


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
