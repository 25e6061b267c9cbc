"""Prometheus `/metrics` in the text exposition format, written out by hand (a handful of
gauges does not need a client library): runs and jobs by status, tokens and cost by
model, event lag, live clients, events fed, delivered and dropped."""

from __future__ import annotations

from collections.abc import Iterable

from corral.server.state import ServerState


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, value: float | int, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


def _family(name: str, kind: str, text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples]


def _jobs_by_status(history: object) -> dict[str, int]:
    """Every job of the history by its status, in one query on a SQL history ({} for a
    history without an engine: the run rows' final counts are used instead)."""
    engine = getattr(history, "engine", None)
    if engine is None:
        return {}
    from sqlalchemy import func, select

    from corral.models import JobStatus
    from corral.store import schema

    jobs = schema.jobs
    counts = dict.fromkeys((str(status) for status in JobStatus), 0)
    with engine.connect() as conn:
        for status, count in conn.execute(
            select(jobs.c.status, func.count()).group_by(jobs.c.status)
        ):
            counts[str(status)] = int(count)
    return counts


def render(state: ServerState) -> str:
    """The exposition text. Reads the history (call it off the event loop)."""
    history = state.history
    runs = history.list_runs(limit=None)
    by_status: dict[str, int] = {}
    jobs: dict[str, int] = {"succeeded": 0, "failed": 0, "skipped": 0, "cancelled": 0}
    for row in runs:
        by_status[str(row.status)] = by_status.get(str(row.status), 0) + 1
        jobs["succeeded"] += row.jobs_succeeded
        jobs["failed"] += row.jobs_failed
        jobs["skipped"] += row.jobs_skipped
        jobs["cancelled"] += row.jobs_cancelled
    jobs = _jobs_by_status(history) or jobs
    usage = history.usage("model")
    hub = state.hub
    lines: list[str] = []
    lines += _family(
        "corral_runs",
        "gauge",
        "Runs in the history by status.",
        (_sample("corral_runs", n, {"status": s}) for s, n in sorted(by_status.items())),
    )
    lines += _family(
        "corral_jobs",
        "gauge",
        "Jobs of the recorded runs by status (waiting, running, succeeded...).",
        (_sample("corral_jobs", n, {"status": s}) for s, n in sorted(jobs.items())),
    )
    lines += _family(
        "corral_tokens",
        "counter",
        "Tokens by model and kind.",
        (
            _sample("corral_tokens", count, {"model": row.key, "kind": kind})
            for row in usage
            for kind, count in row.tokens.to_dict().items()
        ),
    )
    lines += _family(
        "corral_cost_usd",
        "counter",
        "Known cost in USD by model.",
        (_sample("corral_cost_usd", float(row.known_usd), {"model": row.key}) for row in usage),
    )
    # one unlabelled sample each: (name, kind, help, value)
    single: list[tuple[str, str, str, float | int]] = [
        ("corral_server_runs_live", "gauge", "Runs this server is running.", len(state.runs.live)),
        (
            "corral_event_lag_seconds",
            "gauge",
            "Age of the newest event when the hub got it (fed by a worker, or read).",
            round(hub.lag_s, 6),
        ),
        ("corral_live_clients", "gauge", "Connected live event clients.", hub.clients),
        (
            "corral_events_delivered_total",
            "counter",
            "Frames queued to live clients.",
            hub.delivered,
        ),
        (
            "corral_events_fed_total",
            "counter",
            "Events this server's run workers fed to the hub as they were published.",
            hub.fed,
        ),
        (
            "corral_events_dropped_total",
            "counter",
            "Events a client missed: 0 unless a run's history lost events it had sent live "
            "(a slow client is told to resync instead).",
            hub.dropped,
        ),
        (
            "corral_client_resyncs_total",
            "counter",
            "Clients told to resync after falling behind.",
            hub.overflows,
        ),
        (
            "corral_auth_rejected_total",
            "counter",
            "Requests refused for a missing or wrong token.",
            state.rejected_auth,
        ),
    ]
    for name, kind, text, value in single:
        lines += _family(name, kind, text, [_sample(name, value)])
    return "\n".join(lines) + "\n"
