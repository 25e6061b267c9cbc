"""Parser throughput on one core: MB/s of output lines turned into events, per format.

    python benchmarks/bench_parsing.py [--rounds N]

The Claude stream is the recorded tool-use run repeated, with a multi-megabyte tool
result every few rounds, as the real CLI prints when a tool reads a big file.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from corral.parsing import make_parser

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "parsing"
TARGET_MB_S = 50.0
ROUNDS = 400
BIG_EVERY = 20  # one big tool result every 20 rounds
BIG_BYTES = 4_000_000


def big_tool_result(call_id: str) -> str:
    # what Claude prints after `cat` of a large file: escaped newlines, quotes, unicode
    chunk = 'line of a log file with "quotes", tabs\tand unicode \u00e9\u4e2d\n'
    content = chunk * (BIG_BYTES // len(chunk))
    return json.dumps(
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"tool_use_id": call_id, "type": "tool_result", "content": content}],
            },
            "tool_use_result": {"stdout": content, "stderr": "", "interrupted": False},
        },
        ensure_ascii=False,
    )


def claude_stream(rounds: int = ROUNDS) -> list[str]:
    lines = (DATA / "claude" / "claude_tool_stream.jsonl").read_text().splitlines()
    init, body, result = lines[0], lines[1:-1], lines[-1]
    out = [init]
    for n in range(rounds):
        # give each round's messages fresh ids, as a long session has
        out += [line.replace("msg_mock_", f"msg_{n}_") for line in body]
        if n % BIG_EVERY == 0:
            out.append(big_tool_result(f"toolu_big_{n}"))
    out.append(result)
    return out


def repeated(path: Path, times: int) -> list[str]:
    return path.read_text().splitlines() * times


def measure(fmt: str, lines: list[str], repeat: int = 3) -> tuple[float, int, int]:
    size = sum(len(line.encode()) + 1 for line in lines)
    best = float("inf")
    events = 0
    for _ in range(repeat):
        parser = make_parser(fmt)
        feed: Callable[..., list[object]] = parser.feed
        start = time.perf_counter()
        count = 0
        for line in lines:
            count += len(feed(line, "stdout"))
        count += len(parser.finish(0))
        best = min(best, time.perf_counter() - start)
        events = count
    return size / best / 1e6, size, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="conversation rounds")
    rounds = parser.parse_args().rounds
    scale = max(1, rounds * 3000 // ROUNDS)
    cases = [
        ("claude-stream-json", claude_stream(rounds)),
        (
            "claude-stream-json (partial)",
            repeated(DATA / "claude" / "claude_stream_partial.jsonl", max(1, scale // 10)),
        ),
        ("codex-jsonl", repeated(DATA / "codex" / "codex_exec_tool.jsonl", scale)),
        ("gemini-stream-json", repeated(DATA / "gemini" / "gemini_tool_stream.jsonl", scale)),
        ("generic", repeated(DATA / "codex" / "codex_text.stderr.txt", scale)),
    ]
    print(f"{'format':32} {'MB':>8} {'events':>8} {'MB/s':>8}")
    claude_rate = 0.0
    for name, lines in cases:
        fmt = name.split(" ")[0]
        rate, size, events = measure(fmt, lines)
        if name == "claude-stream-json":
            claude_rate = rate
        print(f"{name:32} {size / 1e6:8.1f} {events:8d} {rate:8.1f}")
    verdict = "ok" if claude_rate >= TARGET_MB_S else "BELOW TARGET"
    print(f"claude-stream-json: {claude_rate:.0f} MB/s (target {TARGET_MB_S:.0f} MB/s): {verdict}")


if __name__ == "__main__":
    main()
