"""Rows that run trivial jobs: one command, N x `true`, and the live table at -j 200."""

from __future__ import annotations

import shutil

from harness import fixtures, flows
from harness.context import Context, at_most, excess, ratio
from harness.measure import TERMINAL_SIZE
from harness.report import RowResult, show


def exec_row(ctx: Context) -> list[RowResult]:
    """`corral exec -q -- true` against `true` itself and one job of GNU parallel."""
    rounds = ctx.n_rounds(10)
    true = shutil.which("true") or "/bin/true"
    got = ctx.measure(
        "exec",
        [
            ctx.cmd_entry("true", "`true`", [true]),
            ctx.peer(
                "parallel",
                "parallel",
                "GNU parallel, one job",
                lambda p: [p, "--will-cite", true, ":::", "1"],
            ),
            ctx.corral_run("corral", "corral exec (history)", "exec", "-q", "--", "true"),
            ctx.corral_run(
                "nostore", "corral exec --no-store", "exec", "-q", "--no-store", "--", "true"
            ),
        ],
        rounds,
        warmup=True,
    )
    row = got.row("exec", "`corral exec -q -- true`", rounds)
    wall = got.each(lambda s: s.wall)
    above = {k: got.vs(excess("wall"), k, "true") for k in ("corral", "nostore", "parallel")}
    row.derived = [(f"{got[k].label} − `true`, wall", show(v, 3, " s")) for k, v in above.items()]
    parallel = show(wall["parallel"], 3, " s") if got.ran("parallel") else got["parallel"].missing
    row.cells = {
        "history": f"{show(wall['corral'], 3, ' s')}; "
        f"+{show(above['corral'], 3, ' s')} over `true`",
        "nostore": f"{show(wall['nostore'], 3, ' s')}; +{show(above['nostore'], 3, ' s')}",
        "peers": f"`true` {show(wall['true'], 3, ' s')}; GNU parallel, one job: {parallel}",
        "target": "≤ 0.100 s above `true`, history on",
    }
    row.verdict = ctx.verdict(at_most(above["corral"], 0.100), f"+{show(above['corral'], 3, ' s')}")
    return [row]


def flat_row(ctx: Context, jobs: int, target: float, with_dag: bool) -> list[RowResult]:
    """N x `true` at -j 8 against xargs and GNU parallel (and, at 10k, the same jobs as a DAG)."""
    rounds = ctx.n_rounds(5 if jobs <= 1000 else 3)
    flow = fixtures.write(ctx.project / f"flat{jobs}.yaml", flows.flat(jobs))
    args = str(fixtures.args_file(ctx.work, jobs))
    entries = [
        ctx.peer(
            "xargs", "xargs", "xargs -P 8", lambda p: [p, "-P", "8", "-n", "1", "-a", args, "true"]
        ),
        ctx.peer(
            "parallel",
            "parallel",
            "GNU parallel -j 8",
            lambda p: [p, "--will-cite", "-j", "8", "-a", args, "true"],
        ),
        ctx.corral_run("corral", "corral (history)", "run", str(flow), "-q"),
        ctx.corral_run("nostore", "corral --no-store", "run", str(flow), "-q", "--no-store"),
    ]
    edges = 0
    if with_dag:
        text, edges = flows.dag(jobs)
        dag = fixtures.write(ctx.project / f"dag{jobs}-run.yaml", text)
        entries.append(ctx.corral_run("dag", "corral DAG (history)", "run", str(dag), "-q"))
    per_job = jobs / 1000  # seconds / (jobs / 1000) = ms per job
    for entry in entries:
        entry.metrics["own CPU ms/job"] = lambda s: s.own_cpu / per_job
    got = ctx.measure(f"flat{jobs}", entries, rounds, warmup=jobs <= 1000)
    row = got.row(
        f"flat{jobs}",
        f"{jobs:,} × `true`, `-j 8`",
        rounds,
        ["xargs", "parallel", "corral", "nostore"],
    )
    times = {k: got.vs(ratio("wall"), k, "xargs") for k in ("corral", "nostore", "parallel")}
    cpu_job = got.each(lambda s: s.own_cpu / per_job)
    over = {
        k: (
            got.vs(excess("wall", per_job), k, "xargs"),
            got.vs(excess("tree_cpu", per_job), k, "xargs"),
        )
        for k in times
    }
    for k, (wall_ms, cpu_ms) in over.items():
        row.derived.append((f"{got[k].label} ÷ xargs, wall", show(times[k], 2, "×")))
        row.derived.append(
            (
                f"{got[k].label} over xargs per job, wall / tree CPU",
                f"{show(wall_ms, 2, ' ms')} / {show(cpu_ms, 2, ' ms')}",
            )
        )
    peers = (
        f"GNU parallel {show(times['parallel'], 2, '×')} xargs"
        if got.ran("parallel")
        else f"GNU parallel: {got['parallel'].missing}"
    )
    row.cells = {
        "history": f"{show(times['corral'], 2, '×')} xargs "
        f"({show(cpu_job['corral'], 2, ' ms')} own CPU/job; "
        f"+{show(over['corral'][1], 2, ' ms')}/job tree CPU over xargs)",
        "nostore": f"{show(times['nostore'], 2, '×')} ({show(cpu_job['nostore'], 2, ' ms')}; "
        f"+{show(over['nostore'][1], 2, ' ms')})",
        "peers": peers,
        "target": f"≤ {target}× xargs, history on",
    }
    row.verdict = ctx.verdict(at_most(times["corral"], target), show(times["corral"], 2, "×"))
    if not with_dag:
        return [row]
    dag_wall = got.vs(excess("wall", per_job), "dag", "corral")
    dag_cpu = got.vs(excess("own_cpu", per_job), "dag", "corral")
    figure = f"{show(dag_wall, 2, ' ms')}/job wall, {show(dag_cpu, 2, ' ms')}/job own CPU"
    extra = got.row(
        f"dag{jobs}",
        f"(extra) {jobs:,}-node DAG run ({edges:,} edges) vs the same jobs flat, `-j 8`",
        rounds,
        ["corral", "dag"],
    )
    extra.derived = [("DAG − flat, per job", figure)]
    extra.cells = {"history": figure, "target": "< 2 ms/job (this folder's earlier target)"}
    extra.verdict = ctx.verdict(at_most(dag_wall, 2.0), f"{show(dag_wall, 2, ' ms')}/job")
    extra.notes = ["measured in the same rounds as the flat row above"]
    return [row, extra]


def live_row(ctx: Context) -> list[RowResult]:
    """The live table against prefixed lines, both on the same kind of pseudo-terminal."""
    rounds = ctx.n_rounds(3)
    jobs, concurrency = ctx.size(2000, 40), ctx.size(200, 10)
    script = f"echo start; echo line two; sleep {'0.05' if ctx.quick else '0.5'}; echo end"
    text = flows.command("l", jobs, concurrency, ["sh", "-c", script])
    flow = fixtures.write(ctx.project / f"live{jobs}.yaml", text)
    entries = [
        ctx.corral_run(
            mode, f"corral --output {mode} (pty)", "run", str(flow), "--output", mode, pty=True
        )
        for mode in ("prefixed", "live")
    ]
    for entry in entries:
        entry.metrics["terminal KB"] = lambda s: s.tty_bytes / 1000
    got = ctx.measure("live", entries, rounds)
    row = got.row("live", f"{jobs:,} jobs at `-j {concurrency}` with the live table", rounds)
    wall = got.vs(ratio("wall"), "live", "prefixed")
    row.derived = [
        ("live ÷ prefixed, wall", show(wall, 2, "×")),
        ("live ÷ prefixed, own CPU", show(got.vs(ratio("own_cpu"), "live", "prefixed"), 2, "×")),
    ]
    rows, cols = TERMINAL_SIZE
    row.notes = [
        f"each job: `sh -c '{script}'`; both modes on a {rows}×{cols} pseudo-terminal, drained"
    ]
    row.cells = {
        "history": f"{show(wall, 2, '×')} the time of `--output prefixed`",
        "target": "≤ 1.2×",
    }
    row.verdict = ctx.verdict(at_most(wall, 1.2), show(wall, 2, "×"))
    return [row]
