"""The CLI's commands against a server (`--server URL`): `run`, `resume`, `runs`, `show`,
`logs` and `usage` ask the API and render its answers with the same tables and JSON as
the local commands.

`corral run --server URL flow.yaml` submits the flow, then follows the run's events over
the WebSocket into the same journal and live view a local run uses, so it looks the
same. Ctrl-C detaches (the run goes on on the server; exit 130) unless
`--cancel-on-interrupt`, which cancels the run and follows it to its end.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from corral.errors import EXIT_JOBS_FAILED, EXIT_OK, EXIT_SIGINT
from corral.events.codec import event_from_dict
from corral.events.types import RunFinished, RunStarted
from corral.models import Cost, ErrorKind, JobStatus, RunStatus
from corral.server.client import Server, follow_events, normal_url
from corral.store.records import AttemptRow, JobRecord, ModelUsage, RunRecord, RunRow, UsageRow

if TYPE_CHECKING:
    from corral.cli.options import RunFlags
    from corral.models import Tokens

JSON_VERSION = 1


# -- documents back into records (for the tables) ---------------------------------------------


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _tokens(data: dict[str, Any] | None) -> Tokens:
    from corral.models import Tokens

    return Tokens(**(data or {}))


def _cost(data: dict[str, Any] | None) -> Cost | None:
    return None if data is None else Cost.from_dict(data)


def run_row(data: dict[str, Any]) -> RunRow:
    jobs = data.get("jobs", {})
    return RunRow(
        id=data["id"],
        flow_name=data["flow_name"],
        flow_path=data["flow_path"],
        status=RunStatus(data["status"]),
        started_at=_ts(data["started_at"]) or 0.0,
        ended_at=_ts(data.get("ended_at")),
        log_root=data.get("log_root", ""),
        resumed_from=data.get("resumed_from"),
        user=data.get("user", ""),
        host=data.get("host", ""),
        error=data.get("error"),
        tokens=_tokens(data.get("tokens")),
        cost=_cost(data.get("cost")),
        jobs_total=jobs.get("total", 0),
        jobs_succeeded=jobs.get("succeeded", 0),
        jobs_failed=jobs.get("failed", 0),
        jobs_skipped=jobs.get("skipped", 0),
        rehearsal=bool(data.get("rehearsal", False)),
        jobs_cancelled=jobs.get("cancelled", 0),
    )


def _attempt(run_id: str, data: dict[str, Any]) -> AttemptRow:
    from corral.models import CostSource

    return AttemptRow(
        run_id=run_id,
        job=data["job"],
        attempt=data["attempt"],
        status=JobStatus(data["status"]),
        started_at=_ts(data.get("started_at")),
        ended_at=_ts(data.get("ended_at")),
        duration_s=data.get("duration_s"),
        exit_code=data.get("exit_code"),
        signal=data.get("signal"),
        error=data.get("error"),
        error_kind=None if data.get("error_kind") is None else ErrorKind(data["error_kind"]),
        pid=data.get("pid"),
        argv=tuple(data.get("argv") or ()),
        spec=data.get("spec"),
        tool=data.get("tool") or "generic",
        model=data.get("model"),
        session_id=data.get("session_id"),
        result=data.get("result"),
        outputs=data.get("outputs"),
        log_dir=data.get("log_dir", ""),
        unparsed_lines=data.get("unparsed_lines", 0),
        tokens=_tokens(data.get("tokens")),
        cost=_cost(data.get("cost")),
        models=tuple(
            ModelUsage(
                m["model"],
                _tokens(m.get("tokens")),
                None if m.get("cost_usd") is None else Decimal(m["cost_usd"]),
                CostSource(m["cost_source"]),
            )
            for m in data.get("models") or ()
        ),
    )


def run_record(data: dict[str, Any]) -> RunRecord:
    row = run_row(data["run"])
    jobs = tuple(job_record(row.id, j) for j in data.get("jobs", ()))
    return RunRecord(
        row, data.get("flow_hash", ""), data.get("flow_content", ""), tuple(data["args"]), jobs
    )


def job_record(run_id: str, j: dict[str, Any]) -> JobRecord:
    return JobRecord(
        j["name"],
        JobStatus(j["status"]),
        j.get("reason"),
        tuple(_attempt(run_id, a) for a in j.get("attempts", ())),
    )


def usage_row(data: dict[str, Any]) -> UsageRow:
    cost = data["cost"]
    return UsageRow(
        key=data["key"],
        attempts=data["attempts"],
        tokens=_tokens(data.get("tokens")),
        reported_usd=Decimal(cost["reported_usd"]),
        estimated_usd=Decimal(cost["estimated_usd"]),
        unpriced=cost["unpriced"],
    )


def _echo_json(data: object) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


# -- the history commands ---------------------------------------------------------------------


def runs(
    url: str,
    *,
    status: str | None,
    flow: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    rehearsal: bool | None = None,
    no_chain: bool = False,
) -> int:
    """`corral runs` from the server: its lines are a run and its resumes as one
    (`corral.app.chain`), or every run alone with `no_chain`, as locally."""
    only = None if rehearsal is None else str(rehearsal).lower()
    chained = {"chain": "false"} if no_chain else {}
    with Server(url) as server:
        found = server.get(
            "/runs", status=status, flow=flow, since=since, limit=limit, rehearsal=only, **chained
        )["runs"]
    rows = [run_row(r) for r in found]
    # a server older than resume chains sends no `chain`: its lines are runs alone
    chains = [None if no_chain else r.get("chain") for r in found]
    if as_json:
        # the server's duration, worked out from its exact times (the ISO text they come
        # as is to the microsecond): the same figure a local `corral runs` prints
        timed = [
            {**row.to_dict(), "duration_s": line["duration_s"]}
            for row, line in zip(rows, found, strict=True)
        ]
        lines = [
            line if chain is None else {**line, "chain": chain}
            for line, chain in zip(timed, chains, strict=True)
        ]
        _echo_json({"schema_version": JSON_VERSION, "runs": lines})
        return 0
    if not rows:
        filtered = status or flow or since or rehearsal is not None
        # as a local `runs` names the history it read, this names the server it asked
        click.echo("No runs match." if filtered else f"No runs recorded on the server at {url}.")
        return 0
    from corral.render.columns import print_table
    from corral.render.history import console, runs_table

    resumes = {
        row.id: (chain["resumes"], chain["origin"])
        for row, chain in zip(rows, chains, strict=True)
        if chain and chain["resumes"]
    }
    print_table(console(), runs_table(rows, resumes=resumes))  # as the local command
    return 0


def show(url: str, run_id: str, *, as_json: bool, no_chain: bool = False) -> int:
    with Server(url) as server:
        document = server.get(f"/runs/{run_id}")
    record = run_record(document)
    # --no-chain: the run alone, without the jobs it kept from the runs it resumed
    kept_jobs = () if no_chain else document.get("kept", ())
    kept = tuple((k["kept_from"], job_record(k["kept_from"], k)) for k in kept_jobs)
    if as_json:
        kept_json = [{**job.to_dict(), "kept_from": run} for run, job in kept]
        shown = {"schema_version": JSON_VERSION, **record.to_dict(), "kept": kept_json}
        if not no_chain and "chain" in document:  # a server that knows resume chains
            shown["chain"] = document["chain"]
        _echo_json(shown)
        return 0
    from corral.render.history import console, print_record

    print_record(console(), record, kept=kept)
    return 0


def usage(
    url: str,
    *,
    by: str,
    since: str | None,
    as_json: bool,
    as_csv: bool,
    include_rehearsals: bool = False,
) -> int:
    # the server leaves rehearsals out by default, as the local command does
    extra = {"include_rehearsals": "true"} if include_rehearsals else {}
    with Server(url) as server:
        if as_csv:
            click.echo(server.get("/usage.csv", by=by, since=since, **extra), nl=False)
            return 0
        rows = [usage_row(r) for r in server.get("/usage", by=by, since=since, **extra)["rows"]]
    if as_json:
        _echo_json({"schema_version": JSON_VERSION, "by": by, "rows": [r.to_dict() for r in rows]})
        return 0
    from corral.render.fit import Trimmed
    from corral.render.history import console, usage_table

    if not rows:
        click.echo("No usage recorded.")
    else:
        console().print(Trimmed(usage_table(by, rows)))  # as the local command
    return 0


def logs(
    url: str,
    run_id: str,
    job: str | None,
    *,
    follow: bool,
    stream: str | None,
    attempt: int | None,
    raw: bool = False,
    fmt: str = "raw",
) -> int:
    """A job's lines from the server, as a local `corral logs` shows them: both streams
    (stderr lines marked `stderr| `) unless `stream` names one, in `fmt` (raw, text,
    json); on a terminal (unless `raw`) control sequences are shown as text."""
    from corral.cli.logs import STDERR_MARK
    from corral.render.safe import visible_line

    marked = stream is None and fmt != "json"
    stream = stream or "both"
    out = sys.stdout
    visible: Callable[[str], str] = (lambda text: text) if raw or not out.isatty() else visible_line

    def shown(line: dict[str, Any]) -> str:
        mark = STDERR_MARK if marked and line.get("stream") == "stderr" else ""
        return mark + visible(line["text"])

    with Server(url) as server:
        record = run_record(server.get(f"/runs/{run_id}"))
        # without JOB, every job: followed one after the other (a follow starts from the
        # job's first line, so nothing a later job printed meanwhile is missed)
        names = [job] if job is not None else [j.name for j in record.jobs]
        for name in names:
            if len(names) > 1:
                out.write(f"==> {name} <==\n")
            path = f"/runs/{record.run.id}/jobs/{name}/logs"
            if follow:
                lines = server.stream_lines(
                    path, stream=stream, attempt=attempt, follow=True, format=fmt
                )
                for line in lines:
                    if line:
                        out.write(shown(orjson.loads(line)) + "\n")
                        out.flush()
                continue
            offset = 0
            while True:
                page = server.get(
                    path, stream=stream, attempt=attempt, offset=offset, limit=5000, format=fmt
                )
                out.writelines(shown(x) + "\n" for x in page["lines"])
                if page.get("complete", True) or page["next_offset"] == offset:
                    break
                offset = page["next_offset"]
    out.flush()
    return 0


# -- run and resume -----------------------------------------------------------------------------


def run(
    url: str,
    flow_path: str,
    flags: RunFlags,
    *,
    only: tuple[str, ...] = (),
    from_: tuple[str, ...] = (),
    rehearse: bool = False,
    cancel_on_interrupt: bool = False,
) -> int:
    """Submit FLOW to the server and follow it as a local run looks. The server plans it
    with --only/--from, --jobs, --fail-fast, --start-at and --executor as `corral run`
    would; the options about this machine's history, prices and policies are refused."""
    from corral.app.check import check_flow

    refuse_local_options(flags)
    # the same messages (and the same selection errors), before anything is sent
    loaded, plan = check_flow(flow_path, only=only, from_=from_)
    submission = {
        "flow": loaded.text,
        "filename": Path(flow_path).name,
        "rehearse": rehearse,
        "only": list(only),
        "from": list(from_),
        **run_choices(flags),
    }
    with Server(url) as server:
        accepted = server.post("/runs", submission)
        token = server.token
    return _follow(url, token, accepted["run_id"], flags, cancel_on_interrupt, plan.budget)


# `corral run` options that name something on this machine, not the server's
LOCAL_ONLY = (
    ("store", "--store", "the server records into its own history (its --store)"),
    ("no_store", "--no-store", "the server keeps the history of every run it runs"),
    ("price_file", "--prices", "the server prices with its own price book"),
    ("policies", "--policy", "the server takes no run policy files yet"),
)


def run_choices(flags: RunFlags) -> dict[str, Any]:
    """The options a server honours, as the API takes them."""
    start_at = flags.options().start_at
    return {
        "jobs": flags.jobs,
        "fail_fast": flags.fail_fast,
        "start_at": None if start_at is None else start_at.timestamp(),
        "executor": flags.executor,
    }


def refuse_local_options(flags: RunFlags) -> None:
    """UsageError for an option `--server` cannot honour (see LOCAL_ONLY)."""
    from corral.errors import UsageError

    for name, option, why in LOCAL_ONLY:
        if getattr(flags, name):
            raise UsageError(
                f"{option} does not go with --server: {why}",
                hint=f"drop {option}, or run the flow here without --server",
            )


def resume(url: str, run_id: str, flags: RunFlags, *, cancel_on_interrupt: bool) -> int:
    refuse_local_options(flags)
    with Server(url) as server:
        accepted = server.post(f"/runs/{run_id}/resume", run_choices(flags))
        token = server.token
    click.echo(f"resuming {run_id} on {normal_url(url)} as run {accepted['run_id']}", err=True)
    return _follow(url, token, accepted["run_id"], flags, cancel_on_interrupt, None)


def _follow(
    url: str,
    token: str,
    run_id: str,
    flags: RunFlags,
    cancel_on_interrupt: bool,
    budget: Any,
) -> int:
    from corral.cli.run import _render, _view
    from corral.events.bus import Bus
    from corral.journal import RunJournal

    ui = _view(flags, run_id)
    state: dict[str, Any] = {"journal": None, "bus": None, "finished": None, "interrupts": 0}
    stop = asyncio.Event()

    def start(header: RunStarted) -> None:
        state["log_root"] = header.log_root  # where the logs are, on the server
        journal = RunJournal(header.jobs, budget=budget)
        bus = Bus()
        bus.subscribe(journal)
        bus.subscribe(ui.subscriber(journal))
        state["journal"], state["bus"] = journal, bus
        ui.__enter__()

    def on_frame(frame: dict[str, Any]) -> bool:
        event = event_from_dict(frame["event"])
        if isinstance(event, RunStarted) and state["bus"] is None:
            start(event)
        if state["bus"] is not None:
            state["bus"].publish(event)
        if isinstance(event, RunFinished):
            state["finished"] = event
            return True
        return False

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            state["interrupts"] += 1
            if cancel_on_interrupt and state["interrupts"] == 1:
                loop.run_in_executor(None, _cancel, url, token, run_id)
            else:
                stop.set()
                follower.cancel()

        loop.add_signal_handler(signal.SIGINT, interrupted)
        follower = asyncio.ensure_future(follow_events(url, token, run_id, on_frame, stop=stop))
        try:
            await follower
        except asyncio.CancelledError:
            pass
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    started = time.time()
    try:
        asyncio.run(main())
    finally:
        if state["bus"] is not None:
            ui.__exit__(None, None, None)
    finished: RunFinished | None = state["finished"]
    if finished is None:
        click.echo(
            f"corral: detached from run {run_id}; it goes on on the server "
            f"(corral show {run_id} --server {normal_url(url)})",
            err=True,
        )
        return EXIT_SIGINT
    from corral.app.run import RunReport

    report = RunReport(
        run_id=run_id,
        status=finished.status,
        exit_code=EXIT_OK if finished.status is RunStatus.SUCCEEDED else EXIT_JOBS_FAILED,
        started_at=started,
        ended_at=finished.ended_at,
        log_root=Path(state.get("log_root") or "."),
        journal=state["journal"],
    )
    _render(report, ui, flags.json_mode)
    if state["interrupts"]:
        return EXIT_SIGINT
    return report.exit_code


def _cancel(url: str, token: str, run_id: str) -> None:
    with Server(url, token) as server:
        server.post(f"/runs/{run_id}/cancel")
    click.echo(f"corral: cancelling run {run_id} on the server", err=True)


Echo = Callable[[str], None]
