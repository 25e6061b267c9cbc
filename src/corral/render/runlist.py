"""The cells of `corral runs`: one line per run, as text (no rich, so a listing to a pipe
imports none of it; `render.history.runs_table` makes the rich table from the same cells)."""

from __future__ import annotations

from collections.abc import Mapping

from corral.render.format import cost_or_dash, duration_or_dash, time_text, tokens_text
from corral.store.records import RunRow

REHEARSAL_LABEL = "(rehearsal)"  # a simulated run, shown next to its flow's name
HEADERS = ("RUN", "FLOW", "STATUS", "STARTED", "DURATION", "JOBS", "TOKENS", "COST")
RIGHT = frozenset({HEADERS.index("TOKENS"), HEADERS.index("COST")})  # right-aligned


def jobs_text(run: RunRow) -> str:
    """`3/4 ok, 1 failed`: how many of the run's jobs succeeded, failed, were cancelled."""
    text = f"{run.jobs_succeeded}/{run.jobs_total} ok"
    if run.jobs_failed:
        text += f", {run.jobs_failed} failed"
    if run.jobs_cancelled:
        text += f", {run.jobs_cancelled} cancelled"
    return text


def runs_columns(
    runs: list[RunRow], *, resumes: Mapping[str, tuple[int, str]] | None = None
) -> tuple[list[str], list[list[str]]]:
    """The headers and one row of cells per run; `resumes` gives a resumed run's number of
    resumes and first run (a last column, RESUMES). Columns in `RIGHT` are right-aligned."""
    headers = [*HEADERS, *(["RESUMES"] if resumes else [])]
    rows = []
    for run in runs:
        extra: list[str] = []
        if resumes:
            count, origin = resumes.get(run.id, (0, ""))
            extra = [f"{count} (from {origin})" if count else "-"]
        rows.append(
            [
                run.id,
                run.flow_name + (f" {REHEARSAL_LABEL}" if run.rehearsal else ""),
                str(run.status),
                time_text(run.started_at),
                duration_or_dash(run.duration_s),
                jobs_text(run),
                tokens_text(run.tokens.total),
                cost_or_dash(run.cost),
                *extra,
            ]
        )
    return headers, rows
