"""The options every command that runs jobs shares (`run`, `exec`, `rehearse`, `resume`),
parsed into one typed value, `RunFlags`, and turned into the use case's `RunOptions`."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from corral.errors import UsageError

if TYPE_CHECKING:
    from corral.app.run import RunOptions

T = TypeVar("T")
Command = Callable[..., int]

POLICY_HELP = (
    "Rego policy file or folder that must allow the flow (repeatable); the flow's "
    "`policy:` and CORRAL_POLICY apply as well."
)


def policy_option(function: Callable[..., T]) -> Callable[..., T]:
    """`--policy PATH` (repeatable), for `policy check` and every command that runs jobs."""
    option = click.option(
        "--policy",
        "policies",
        multiple=True,
        metavar="PATH",
        type=click.Path(exists=True),
        help=POLICY_HELP,
    )
    return option(function)


def run_options(function: Command) -> Command:
    """The options every command that runs jobs shares; the command gets them as one
    typed `flags: RunFlags` argument."""
    return _with_run_options(function, jobs=True)


def single_job_options(function: Command) -> Command:
    """`run_options` without `-j/--jobs`, which means nothing for one job (`corral exec`)."""
    return _with_run_options(function, jobs=False)


def _with_run_options(function: Command, *, jobs: bool) -> Command:
    @functools.wraps(function)
    def with_flags(*args: object, **values: object) -> int:
        flags = RunFlags.take(values)
        return function(*args, flags=flags, **values)

    options = [
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            help="Most jobs at once (default: the flow's concurrency, else CPUs, at least 2).",
        ),
        click.option(
            "--output",
            type=click.Choice(["auto", "live", "prefixed", "grouped", "quiet"]),
            default="auto",
            show_default=True,
            help="How output is shown: live table on a terminal, prefixed lines otherwise.",
        ),
        click.option("-q", "--quiet", is_flag=True, help="Print only the summary and errors."),
        click.option(
            "--json",
            "json_mode",
            is_flag=True,
            help="Print a machine-readable summary on stdout (and nothing else there).",
        ),
        click.option(
            "--max-line-length",
            type=click.IntRange(min=10),
            help="Truncate displayed lines to N characters (logs keep everything).",
        ),
        click.option("--fail-fast", is_flag=True, help="Cancel everything at the first failure."),
        click.option(
            "--start-at",
            metavar="WHEN",
            help="Delay the start: 30m, 1.5h, 2am, 14:30 (tomorrow if past).",
        ),
        click.option(
            "--store",
            metavar="URL",
            envvar="CORRAL_STORE",
            help="Run history database (default: SQLite in .corral/).",
        ),
        click.option("--no-store", is_flag=True, help="Keep no history for this run."),
        click.option(
            "--prices",
            "price_file",
            type=click.Path(exists=True, dir_okay=False),
            help="Price file that overrides or adds model prices.",
        ),
        click.option(
            "--executor",
            metavar="NAME",
            help="Where jobs run: an executor plugin (default: the flow's, else local).",
        ),
    ]
    if not jobs:
        options = options[1:]
    command: Command = policy_option(with_flags)
    for option in reversed(options):
        command = option(command)
    return command


@dataclass(frozen=True)
class RunFlags:
    """The shared run options as click parsed them (see `run_options`)."""

    jobs: int | None
    output: str
    quiet: bool
    json_mode: bool
    max_line_length: int | None
    fail_fast: bool
    start_at: str | None
    store: str | None
    no_store: bool
    price_file: str | None
    executor: str | None
    policies: tuple[str, ...]

    @classmethod
    def take(cls, values: dict[str, object]) -> RunFlags:
        """Remove the run options from click's `values` (typed as click parsed them)."""
        taken = {f.name: values.pop(f.name, None) for f in fields(cls)}
        return cls(
            jobs=_optional(taken, "jobs", int),
            output=str(taken["output"]),
            quiet=bool(taken["quiet"]),
            json_mode=bool(taken["json_mode"]),
            max_line_length=_optional(taken, "max_line_length", int),
            fail_fast=bool(taken["fail_fast"]),
            start_at=_optional(taken, "start_at", str),
            store=_optional(taken, "store", str),
            no_store=bool(taken["no_store"]),
            price_file=_optional(taken, "price_file", str),
            executor=_optional(taken, "executor", str),
            policies=tuple(str(path) for path in _sequence(taken["policies"])),
        )

    def options(self, *, base_dir: Path | None = None) -> RunOptions:
        from corral.app.run import RunOptions

        return RunOptions(
            jobs=self.jobs,
            fail_fast=self.fail_fast,
            start_at=_start_at(self.start_at),
            store=self.store,
            no_store=self.no_store,
            executor=self.executor,
            args=tuple(sys.argv[1:]),
            base_dir=base_dir,
            price_file=self.price_file,
            policies=self.policies,
        )


def _optional(values: Mapping[str, object], name: str, kind: type[T]) -> T | None:
    value = values[name]
    assert value is None or isinstance(value, kind), f"--{name}: {value!r}"  # click typed it
    return value


def _sequence(value: object) -> tuple[object, ...]:
    assert isinstance(value, tuple), value  # click gives a multiple option as a tuple
    return value


def _start_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    from corral.durations import parse_start_at

    try:
        return parse_start_at(value, datetime.now().astimezone())
    except ValueError as error:
        raise UsageError(f"--start-at: {error}") from None
