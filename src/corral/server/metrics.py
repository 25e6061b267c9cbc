"""Prometheus `/metrics` in the text exposition format, written out by hand (a handful of
gauges does not need a client library): runs and jobs by status, tokens and cost by
model, event lag, live clients, events delivered and dropped."""

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


def render(state: ServerState) -> str:
    """The exposition text. Reads the history (call it off the event loop)."""
    history = state.history
    runs = history.list_runs(limit=None)
    by_status: dict[str, int] = {}
    jobs: dict[str, int] = {"succeeded": 0, "failed": 0, "skipped": 0}
    for row in runs:
        by_status[str(row.status)] = by_status.get(str(row.status), 0) + 1
        jobs["succeeded"] += row.jobs_succeeded
        jobs["failed"] += row.jobs_failed
        jobs["skipped"] += row.jobs_skipped
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
        "Jobs of the recorded runs by final status.",
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
    lines += _family(
        "corral_server_runs_live",
        "gauge",
        "Runs this server is running.",
        [_sample("corral_server_runs_live", len(state.runs.live))],
    )
    lines += _family(
        "corral_event_lag_seconds",
        "gauge",
        "Age of the newest event when the hub read it from the history.",
        [_sample("corral_event_lag_seconds", round(hub.lag_s, 6))],
    )
    lines += _family(
        "corral_live_clients",
        "gauge",
        "Connected live event clients.",
        [_sample("corral_live_clients", hub.clients)],
    )
    lines += _family(
        "corral_events_delivered_total",
        "counter",
        "Frames queued to live clients.",
        [_sample("corral_events_delivered_total", hub.delivered)],
    )
    lines += _family(
        "corral_events_dropped_total",
        "counter",
        "Events lost to a client: always 0 (a slow client is told to resync instead).",
        [_sample("corral_events_dropped_total", 0)],
    )
    lines += _family(
        "corral_client_resyncs_total",
        "counter",
        "Clients told to resync after falling behind.",
        [_sample("corral_client_resyncs_total", hub.overflows)],
    )
    lines += _family(
        "corral_auth_rejected_total",
        "counter",
        "Requests refused for a missing or wrong token.",
        [_sample("corral_auth_rejected_total", state.rejected_auth)],
    )
    return "\n".join(lines) + "\n"
