"""Rows about output: 20 Claude stream-json replays, 100 x 5 MB of JSON lines.

Every tool runs the same emitter (a script that `cat`s a file at full speed): xargs with
`sh -c 'exec EMITTER > FILE'` is the floor (the kernel writes the logs), GNU parallel
`--results` captures into files as corral does, zen reads the Claude stream and keeps
it in memory. Each run is checked: every byte in the logs, every line counted by zen.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from harness import fixtures, flows
from harness.context import Context, at_most, every, ratio
from harness.peers import ZEN_ENV
from harness.report import MB, RowResult, show
from harness.rounds import Entry, emptied, files_check


def _entries(
    ctx: Context, name: str, jobs: int, emitter: Path, size: int, env: dict[str, str]
) -> list[Entry]:
    """xargs, GNU parallel --results and corral (history, --no-store), all running `emitter`."""
    args = str(fixtures.args_file(ctx.work, jobs))
    out, results = ctx.folder(f"{name}-xargs"), ctx.folder(f"{name}-parallel")
    shell = f"exec {shlex.quote(str(emitter))} -p go > {shlex.quote(str(out))}/$1.log"
    flow = ctx.project / f"{name}{jobs}.yaml"
    return [
        ctx.peer(
            "xargs",
            "xargs",
            f"xargs -P {jobs} (sh > file)",
            lambda p: [p, "-P", str(jobs), "-n", "1", "-a", args, "sh", "-c", shell, "sh"],
            check=files_check(out, "*.log", jobs, size, "xargs' files"),
            cleanup=emptied(out, trash=ctx.trash),
        ),
        ctx.peer(
            "parallel",
            "parallel",
            "GNU parallel --results",
            lambda p: [
                p,
                "--will-cite",
                "-j",
                str(jobs),
                "--results",
                f"{results}/",
                "-a",
                args,
                str(emitter),
                "-p",
                "go",
            ],
            check=files_check(results, "**/stdout", jobs, size, "parallel's files"),
            cleanup=emptied(results, trash=ctx.trash),
        ),
        ctx.corral_run(
            "corral",
            "corral (history)",
            "run",
            str(flow),
            "-q",
            env=env,
            check=ctx.logs_check(jobs, size),
        ),
        ctx.corral_run(
            "nostore",
            "corral --no-store",
            "run",
            str(flow),
            "-q",
            "--no-store",
            env=env,
            check=ctx.logs_check(jobs, size),
        ),
    ]


def claude_row(ctx: Context) -> list[RowResult]:
    rounds = ctx.n_rounds(5)
    jobs = ctx.size(20, 3)
    stream = fixtures.claude_stream(ctx.size(2_000_000, 60_000))
    size, lines = stream.stat().st_size, fixtures.lines_in(stream)
    fakebin = ctx.folder("fakebin")
    claude = fixtures.fake_claude(fakebin, stream)
    path_env = {"PATH": f"{fakebin}{os.pathsep}{os.environ.get('PATH', '')}"}
    fixtures.write(ctx.project / f"claude{jobs}.yaml", flows.agents(jobs))
    config = fixtures.write(ctx.work / f"zen{jobs}.json", flows.zen(jobs))
    workspace = ctx.folder("zen-workspace")
    zen_out = ctx.folder("out") / "zen.out"

    def zen_check() -> str | None:
        # zen keeps no logs (the output stays in its memory): check it read every line
        text = zen_out.read_text(errors="replace") if zen_out.exists() else ""
        counted = [int(n) for n in re.findall(r"COMPLETED - (\d+) lines processed", text)]
        if len(counted) == jobs and all(n == lines for n in counted):
            return None
        return (
            f"zen counted {counted[:3]}... lines in {len(counted)} instances, not {jobs} x {lines}"
        )

    megabytes = jobs * size / MB
    entries = _entries(ctx, "claude", jobs, claude, size, path_env)
    entries.insert(
        2,
        ctx.peer(
            "zen",
            "zen",
            f"zen ({ctx.peers['zen'].note})",
            lambda p: [
                p,
                "--config",
                str(config),
                "--workspace",
                str(workspace),
                "--startup-delay",
                "0",
                "--quiet",
            ],
            env={**path_env, **ZEN_ENV},
            check=zen_check,
        ),
    )
    for entry in entries:
        entry.metrics["own CPU ms/MB"] = lambda s: s.own_cpu * 1000 / megabytes
    got = ctx.measure("claude", entries, rounds, warmup=True)
    row = got.row("claude", f"{jobs} × {size / MB:.1f} MB Claude stream-json", rounds)
    per_mb = got.each(lambda s: s.own_cpu * 1000 / megabytes)
    added = got.vs(lambda a, b: (a.own_cpu - b.own_cpu) / b.own_cpu * 100, "corral", "nostore")
    row.derived = [
        (f"{got[k].label}, own CPU per MB", show(v, 1, " ms")) for k, v in per_mb.items()
    ]
    row.derived.append(("history's own CPU over --no-store's", show(added, 0, " %")))
    row.derived += [
        (f"{got[k].label} ÷ zen, own CPU", show(got.vs(ratio("own_cpu"), k, "zen"), 2, "×"))
        for k in ("corral", "nostore")
    ]
    row.notes = [
        f"each job replays {lines:,} lines, {size:,} bytes: one init, the turns as recorded"
    ]
    zen = (
        f"zen {show(per_mb['zen'], 0, ' ms/MB')}, keeps nothing on disk"
        if got.ran("zen")
        else f"zen: {got['zen'].missing}"
    )
    parallel = (
        f"; GNU parallel --results {show(per_mb['parallel'], 1, ' ms/MB')}"
        if got.ran("parallel")
        else ""
    )
    row.cells = {
        "history": f"{show(per_mb['corral'], 1, ' ms')} CPU per MB "
        f"(+{show(added, 0, ' %')} over --no-store)",
        "nostore": show(per_mb["nostore"], 1, " ms/MB"),
        "peers": zen + parallel,
        "target": "≤ 15 ms/MB, history adding ≤ 25 %",
    }
    row.verdict = ctx.verdict(
        every(at_most(per_mb["corral"], 15.0), at_most(added, 25.0)),
        f"{show(per_mb['corral'], 1, ' ms/MB')}, +{show(added, 0, ' %')}",
    )
    return [row]


def jsonl_row(ctx: Context) -> list[RowResult]:
    rounds = ctx.n_rounds(5)
    jobs = ctx.size(100, 4)
    data = fixtures.json_lines(ctx.size(5242, 100), 1000)
    size = data.stat().st_size
    emitter = fixtures.write(
        ctx.folder("fakebin") / "emit-lines", f"#!/bin/sh\nexec cat {shlex.quote(str(data))}\n"
    )
    emitter.chmod(0o755)
    fixtures.write(
        ctx.project / f"lines{jobs}.yaml", flows.command("m", jobs, jobs, [str(emitter)])
    )
    megabytes = jobs * size / MB
    entries = _entries(ctx, "lines", jobs, emitter, size, {})
    for entry in entries:
        entry.metrics["own CPU ms/MB"] = lambda s: s.own_cpu * 1000 / megabytes
    got = ctx.measure("jsonl", entries, rounds)
    row = got.row("jsonl", f"{jobs} × {size / MB:.1f} MB JSON lines", rounds)
    per_mb = got.each(lambda s: s.own_cpu * 1000 / megabytes)
    rss = got.each(lambda s: s.peak_rss / 2**20)
    row.derived = [
        (
            f"{got[k].label}, own CPU per MB / peak RSS",
            f"{show(per_mb[k], 2, ' ms')} / {show(rss[k], 0, ' MiB')}",
        )
        for k in per_mb
    ]
    row.notes = [f"each job prints {size:,} bytes: {size // 1000:,} JSON lines of 1,000 bytes"]
    parallel = (
        f"GNU parallel --results {show(per_mb['parallel'], 2, ' ms/MB')}, "
        f"{show(rss['parallel'], 0, ' MiB')}"
        if got.ran("parallel")
        else f"GNU parallel: {got['parallel'].missing}"
    )
    row.cells = {
        "history": f"{show(per_mb['corral'], 2, ' ms/MB')}, {show(rss['corral'], 0, ' MiB')} RSS",
        "nostore": f"{show(per_mb['nostore'], 2, ' ms/MB')}, {show(rss['nostore'], 0, ' MiB')}",
        "peers": parallel,
        "target": "≤ 2 ms/MB, ≤ 80 MB RSS",
    }
    row.verdict = ctx.verdict(
        every(at_most(per_mb["corral"], 2.0), at_most(rss["corral"], 80.0)),
        f"{show(per_mb['corral'], 2, ' ms/MB')}, {show(rss['corral'], 0, ' MiB')}",
    )
    return [row]


def claude_fresh_row(ctx: Context) -> list[RowResult]:
    """(extra) The same replay with a new message id every turn, as real sessions have."""
    rounds = ctx.n_rounds(3)
    jobs = ctx.size(20, 3)
    stream = fixtures.claude_stream(ctx.size(2_000_000, 60_000), fresh_ids=True)
    size, megabytes = stream.stat().st_size, jobs * stream.stat().st_size / MB
    fakebin = ctx.folder("fakebin-fresh")
    fixtures.fake_claude(fakebin, stream)
    env = {"PATH": f"{fakebin}{os.pathsep}{os.environ.get('PATH', '')}"}
    flow = fixtures.write(ctx.project / f"claude-fresh{jobs}.yaml", flows.agents(jobs))
    entries = [
        ctx.corral_run(
            key, label, "run", str(flow), "-q", *extra, env=env, check=ctx.logs_check(jobs, size)
        )
        for key, label, extra in (
            ("corral", "corral (history)", []),
            ("nostore", "corral --no-store", ["--no-store"]),
        )
    ]
    for entry in entries:
        entry.metrics["own CPU ms/MB"] = lambda s: s.own_cpu * 1000 / megabytes
    got = ctx.measure("claude-fresh", entries, rounds)
    title = f"(extra) {jobs} × {size / MB:.1f} MB Claude stream-json, a new message id every turn"
    row = got.row("claude-fresh", title, rounds)
    per_mb = got.each(lambda s: s.own_cpu * 1000 / megabytes)
    added = got.vs(lambda a, b: (a.own_cpu - b.own_cpu) / b.own_cpu * 100, "corral", "nostore")
    row.derived = [
        (f"{got[k].label}, own CPU per MB", show(v, 1, " ms")) for k, v in per_mb.items()
    ]
    row.derived.append(("history's own CPU over --no-store's", show(added, 0, " %")))
    row.notes = [f"{fixtures.lines_in(stream):,} lines per job; each turn is a new API message"]
    row.cells = {
        "history": f"{show(per_mb['corral'], 1, ' ms')} CPU per MB (+{show(added, 0, ' %')})",
        "nostore": show(per_mb["nostore"], 1, " ms/MB"),
        "target": "≤ 15 ms/MB, history adding ≤ 25 % (as above)",
    }
    row.verdict = ctx.verdict(
        every(at_most(per_mb["corral"], 15.0), at_most(added, 25.0)),
        f"{show(per_mb['corral'], 1, ' ms/MB')}, +{show(added, 0, ' %')}",
    )
    return [row]
