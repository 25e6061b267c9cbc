"""Use cases: what each command does, independent of how it is invoked or shown.

`check_flow` loads and validates a flow (schema, graph, tools); the pieces here (options,
report, interrupts, countdown, run header) serve `corral.session.RunSession`, which runs
a plan. The CLI parses arguments, calls these, and renders.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from corral.config.loader import LoadedFlow, load_flow
from corral.errors import EXIT_JOBS_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, FlowError, Problem
from corral.events.types import RunStarted
from corral.models import Cost, RunStatus, Usage
from corral.plan import Plan, build_plan, select


def default_concurrency() -> int:
    return max(os.cpu_count() or 2, 2)


def new_run_id(now: float | None = None) -> str:
    stamp = datetime.fromtimestamp(now or time.time()).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def check_flow(
    path: str | Path, *, only: Sequence[str] = (), from_: Sequence[str] = ()
) -> tuple[LoadedFlow, Plan]:
    """Load, validate and plan a flow; every problem (schema, graph, tools) at once."""
    loaded = load_flow(path)
    plan = build_plan(loaded.spec, source=loaded.source, locate=loaded.locate)
    problems = tool_problems(loaded, plan)
    if problems:
        raise FlowError(problems)
    if only or from_:
        plan = select(plan, only=only, from_=from_)
    return loaded, plan


def check_flow_document(
    document: dict[str, Any], *, base_dir: Path, source: str = "<exec>"
) -> tuple[LoadedFlow, Plan]:
    """Validate and plan a flow built in memory (single-instance mode)."""
    import json

    from corral.config.loader import validate_document

    def nowhere(path: tuple[str | int, ...]) -> None:
        return None

    spec = validate_document(document, source=source, locate=nowhere)
    loaded = LoadedFlow(spec, base_dir / "exec.json", source, json.dumps(document), nowhere)
    plan = build_plan(spec, source=source, locate=nowhere)
    problems = tool_problems(loaded, plan)
    if problems:
        raise FlowError(problems)
    return loaded, plan


def missing_tools(plan: Plan, environ: Mapping[str, str]) -> set[tuple[str, str]]:
    """Fail before anything starts when an agent CLI the plan needs cannot be found.

    Raises ToolError naming each missing tool, the jobs that use it, and how to fix it;
    returns the (tool, executable) pairs found.
    """
    from corral.errors import ToolError
    from corral.tools import get_tool

    missing: dict[str, list[str]] = {}
    # one PATH walk per setup
    found: dict[tuple[str, frozenset[tuple[str, str]]], str | None] = {}
    for job in plan.jobs.values():
        name = job.tool
        if name is None:
            continue
        key = (name, frozenset(job.spec.env.items()))
        if key not in found:
            found[key] = get_tool(name).find_executable({**environ, **job.spec.env})
        if found[key] is None:
            missing.setdefault(name, []).append(job.name)
    if missing:
        what = "; ".join(f"{tool} (jobs: {', '.join(jobs)})" for tool, jobs in missing.items())
        variable = get_tool(next(iter(missing))).env_var
        raise ToolError(
            f"not installed: {what}",
            hint=f"install it, put it on PATH, or set {variable}; see `corral tools`",
        )
    return {(name, path) for (name, _), path in found.items() if path is not None}


def version_warnings(located: set[tuple[str, str]]) -> list[str]:
    """One warning per installed CLI whose version is not the one its adapter was
    verified against (`corral tools` shows both)."""
    from corral.tools import get_tool
    from corral.tools.verify import installed_versions, version_warning

    pairs = [(get_tool(name), path) for name, path in sorted(located)]
    versions = installed_versions(pairs)
    warnings = (version_warning(tool, versions.get(path)) for tool, path in pairs)
    return sorted({warning for warning in warnings if warning})


def tool_problems(loaded: LoadedFlow, plan: Plan) -> list[Problem]:
    from corral.errors import ToolError
    from corral.plan.build import tool_inherited
    from corral.tools import get_tool
    from corral.tools.base import AGENT_FIELDS

    problems: list[Problem] = []
    for job in plan.jobs.values():
        name = job.tool
        if name is None:
            if job.spec.run is None:
                problems.append(
                    loaded.problem(
                        ("jobs", job.group),
                        "nothing to run: give `run:` (a command) or `prompt:` (an agent)",
                    )
                )
            continue
        try:
            tool = get_tool(name)
        except ToolError as error:
            problems.append(loaded.problem(("jobs", job.group, "tool"), error.lines()[0]))
            continue
        # a tool the job does not name itself comes from `defaults`: say so
        origin = (
            f" (the job's tool comes from defaults.tool: {name})"
            if tool_inherited(loaded.spec, job.group, loaded.locate)
            else ""
        )
        for message in tool.validate(job.spec):
            # point at the field the message names, when the job sets it
            field = next(
                (f for f in AGENT_FIELDS if f in message and f in job.spec.model_fields_set), None
            )
            where: tuple[str | int, ...] = (
                ("jobs", job.group, field, "<key>") if field else ("jobs", job.group)
            )
            problems.append(loaded.problem(where, message + origin))
    return problems


@dataclass
class RunOptions:
    jobs: int | None = None
    fail_fast: bool = False
    start_at: datetime | None = None
    store: str | None = None
    no_store: bool = False
    rehearse: bool = False
    args: tuple[str, ...] = ()
    base_dir: Path | None = None  # where .corral lives; default: the flow's folder
    price_file: str | None = None


@dataclass
class RunReport:
    run_id: str
    status: RunStatus
    exit_code: int
    started_at: float
    ended_at: float
    log_root: Path
    totals: tuple[Usage, Cost | None]
    store_error: str | None = None


class Interrupts:
    """SIGINT/SIGTERM: the first stops the run gracefully, a second SIGINT kills at once."""

    def __init__(self, on_stop: Callable[[str, bool], None]) -> None:
        self._on_stop = on_stop
        self.received: int | None = None
        self._count = 0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._handle, sig)

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    def _handle(self, sig: int) -> None:
        self._count += 1
        self.received = self.received or sig
        name = "SIGINT" if sig == signal.SIGINT else "SIGTERM"
        hard = self._count > 1
        self._on_stop(f"interrupted by {name}", hard)

    @property
    def exit_code(self) -> int | None:
        if self.received is None:
            return None
        return EXIT_SIGINT if self.received == signal.SIGINT else EXIT_SIGTERM


def run_status(failed: bool, interrupted: bool) -> RunStatus:
    if interrupted:
        return RunStatus.CANCELLED
    return RunStatus.FAILED if failed else RunStatus.SUCCEEDED


async def countdown(until: datetime, tick: Callable[[float], None], stop: asyncio.Event) -> bool:
    """Wait until `until`, calling `tick(seconds_left)` every second. False if stopped."""
    while True:
        left = (until - datetime.now(until.tzinfo)).total_seconds()
        if left <= 0:
            return True
        tick(left)
        try:
            await asyncio.wait_for(stop.wait(), min(left, 1.0))
            return False
        except TimeoutError:
            continue


def run_header(
    loaded: LoadedFlow,
    run_id: str,
    log_root: Path,
    args: Sequence[str],
    resumed_from: str | None,
    jobs: Sequence[str],
) -> RunStarted:
    return RunStarted(
        run_id=run_id,
        flow_name=loaded.name,
        flow_path=str(loaded.path.resolve()),
        jobs=tuple(jobs),
        started_at=time.time(),
        flow_hash=loaded.digest,
        flow_content=loaded.text,
        args=tuple(args),
        user=_user(),
        host=socket.gethostname(),
        log_root=str(log_root),
        resumed_from=resumed_from,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def exit_code_for(status: RunStatus, interrupts: Interrupts) -> int:
    if interrupts.exit_code is not None:
        return interrupts.exit_code
    return EXIT_OK if status is RunStatus.SUCCEEDED else EXIT_JOBS_FAILED


__all__ = [
    "RunOptions",
    "RunReport",
    "check_flow",
    "default_concurrency",
    "new_run_id",
]
