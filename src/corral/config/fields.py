"""A flow's fields without pydantic: their defaults, the protocols the plan, the run and
the tool adapters read a job and a flow through, and the plain specs of a flow built in
code (`corral exec`).

`config/schema.py` takes every default from `JOB_DEFAULTS` and `FLOW_DEFAULTS`, so the
pydantic models and the plain specs cannot drift apart. `plain_flow` accepts only what
`corral exec` builds (one job: a command, or a tool with a prompt and a model; timeouts)
and only when it is valid; anything else, and every mistake, goes through the pydantic
models (`config/loader.py`), whose messages the user sees. `corral exec` then imports
neither pydantic nor the flow schema (tests/test_exec_plain.py: the two paths agree).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from corral.durations import parse_duration

if TYPE_CHECKING:
    from corral.config.schema import BudgetSpec, OutputSpec, RehearseSpec

JOB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")  # \Z: `$` lets a final newline in
# a job's name is a folder name under its run's logs: file systems hold 255 bytes at most
MAX_JOB_NAME = 255
_NAME_CHAR = re.compile(r"[A-Za-z0-9_.-]")


def job_name_problem(name: object) -> str | None:
    """What is wrong with a job name, in words that say how to fix it; None if fine."""
    if type(name) is str and len(name) <= MAX_JOB_NAME and JOB_NAME.match(name):
        return None  # the usual name (ASCII only: as many bytes as characters)
    if isinstance(name, bool):
        word = "true" if name else "false"
        return f"got the boolean {word} (YAML reads true/false/yes/no/on/off so): quote it"
    if name is None:
        return "YAML reads this name as null (nothing): quote it, or write a name"
    if isinstance(name, int | float):
        return f"YAML reads this name as the number {name}: quote it"
    if not isinstance(name, str):
        return f"a job name must be text, not {type(name).__name__}: quote it"
    if JOB_NAME.match(name):
        if len(name.encode()) > MAX_JOB_NAME:
            return (
                f"job name {name[:20]}... is {len(name.encode())} bytes long: a job's "
                f"logs folder is named after it and file systems hold {MAX_JOB_NAME} "
                "at most; shorten it"
            )
        return None
    if not name:
        return "a job name cannot be empty"
    bad = [c for c in dict.fromkeys(name) if not _NAME_CHAR.match(c)]
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return (
            f"job name {name!r} has {shown}: a name holds only ASCII letters, digits, '_', "
            "'-' and '.'"
        )
    return f"job name {name!r} starts with {name[0]!r}: start it with a letter, digit or '_'"


# A field's default value, or the factory of an empty container (`Field(default_factory=)`)
Default = Any
Factory = Callable[[], Any]

# every job field and its default: the one place they are written (config/schema.py reads it)
JOB_DEFAULTS: Mapping[str, Default] = MappingProxyType(
    {
        "run": None,
        "shell": False,
        "cwd": None,
        "tool": None,
        "prompt": None,
        "model": None,
        "allowed_tools": None,
        "permission_mode": None,
        "max_turns": None,
        "resume": None,
        "home": None,
        "timeout": None,
        "idle_timeout": None,
        "delay": None,
        "kill_grace": None,
        "budget": None,
        "if_": None,
        "continue_on_error": False,
        "retries": 0,
        "retry_delay": None,
        "retry_max_delay": None,
        "retry_on": None,
        "matrix": None,
        "priority": 0,
        "rehearse": None,
    }
)
JOB_FACTORIES: Mapping[str, Factory] = MappingProxyType(
    {"env": dict, "secret_env": list, "extra_args": list, "needs": list, "outputs": dict}
)
FLOW_DEFAULTS: Mapping[str, Default] = MappingProxyType(
    {
        "version": 1,
        "name": None,
        "concurrency": None,
        "stagger": None,
        "fail_fast": False,
        "kill_grace": None,
        "on_orphan": "adopt",
        "budget": None,
        "executor": None,
        "policy": None,
    }
)
FLOW_FACTORIES: Mapping[str, Factory] = MappingProxyType({"defaults": dict, "secret_names": list})
# fields whose name in a flow file is not their Python name
ALIASES: Mapping[str, str] = MappingProxyType({"if_": "if"})

JOB_FIELDS = frozenset(JOB_DEFAULTS) | frozenset(JOB_FACTORIES) | frozenset(ALIASES.values())
# `defaults` may hold any job field except these, which only make sense on one job
NOT_DEFAULTABLE = frozenset({"needs", "matrix", "outputs", "resume"})

Dump = Literal["json", "python"]
_Self = TypeVar("_Self")


class JobFields(Protocol):
    """A job as the plan, the run and the tool adapters read it: `config.schema.JobSpec`
    (a flow file's) or `PlainJob` (`corral exec`'s)."""

    @property
    def run(self) -> str | list[str] | None: ...
    @property
    def shell(self) -> bool: ...
    @property
    def cwd(self) -> str | None: ...
    @property
    def env(self) -> dict[str, str]: ...
    @property
    def secret_env(self) -> list[str]: ...
    @property
    def tool(self) -> str | None: ...
    @property
    def prompt(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def allowed_tools(self) -> list[str] | None: ...
    @property
    def permission_mode(self) -> str | None: ...
    @property
    def max_turns(self) -> int | None: ...
    @property
    def resume(self) -> str | None: ...
    @property
    def extra_args(self) -> list[str]: ...
    @property
    def home(self) -> str | None: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def idle_timeout(self) -> float | None: ...
    @property
    def delay(self) -> float | None: ...
    @property
    def kill_grace(self) -> float | None: ...
    @property
    def budget(self) -> BudgetSpec | None: ...
    @property
    def needs(self) -> list[str]: ...
    @property
    def if_(self) -> str | None: ...
    @property
    def continue_on_error(self) -> bool: ...
    @property
    def retries(self) -> int: ...
    @property
    def retry_delay(self) -> float | None: ...
    @property
    def retry_max_delay(self) -> float | None: ...
    @property
    def retry_on(self) -> list[str | int] | None: ...
    @property
    def outputs(self) -> dict[str, OutputSpec]: ...
    @property
    def matrix(self) -> dict[str, Any] | None: ...
    @property
    def priority(self) -> int: ...
    @property
    def rehearse(self) -> RehearseSpec | None: ...
    @property
    def model_fields_set(self) -> set[str]: ...
    def model_dump(
        self,
        *,
        mode: Dump = "python",
        exclude: set[str] | None = None,
        by_alias: bool | None = None,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
    ) -> dict[str, Any]: ...
    def model_copy(self: _Self, *, update: Mapping[str, Any] | None = None) -> _Self: ...


class FlowFields(Protocol):
    """A flow as the plan and the run read it: `config.schema.FlowSpec` or `PlainFlow`."""

    @property
    def version(self) -> Literal[1]: ...
    @property
    def name(self) -> str | None: ...
    @property
    def concurrency(self) -> int | None: ...
    @property
    def stagger(self) -> float | None: ...
    @property
    def fail_fast(self) -> bool: ...
    @property
    def kill_grace(self) -> float | None: ...
    @property
    def on_orphan(self) -> Literal["adopt", "kill"]: ...
    @property
    def budget(self) -> BudgetSpec | None: ...
    @property
    def executor(self) -> str | None: ...
    @property
    def policy(self) -> list[str] | None: ...
    @property
    def defaults(self) -> dict[str, Any]: ...
    @property
    def secret_names(self) -> list[str]: ...
    @property
    def jobs(self) -> Mapping[str, JobFields]: ...
    def model_dump(
        self,
        *,
        mode: Dump = "python",
        exclude: set[str] | None = None,
        by_alias: bool | None = None,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
    ) -> dict[str, Any]: ...


class _Plain:
    """What `PlainJob` and `PlainFlow` share: pydantic's `model_*` calls the core makes,
    with pydantic's meaning, over fields that hold only plain values (never a model)."""

    _set: frozenset[str]

    @property
    def model_fields_set(self) -> set[str]:
        return set(self._set)

    def model_dump(
        self,
        *,
        mode: Dump = "python",
        exclude: set[str] | None = None,
        by_alias: bool | None = None,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
    ) -> dict[str, Any]:
        defaults = self._field_defaults()
        out: dict[str, Any] = {}
        for name in defaults:
            if exclude and name in exclude:
                continue
            if exclude_unset and name not in self._set:
                continue
            value = getattr(self, name)
            if exclude_defaults and value == defaults[name]:
                continue
            nested = {"exclude_unset": exclude_unset, "exclude_defaults": exclude_defaults}
            value = _dumped(value, mode=mode, by_alias=by_alias, **nested)
            out[ALIASES.get(name, name) if by_alias else name] = value
        return out

    @classmethod
    def _field_defaults(cls) -> dict[str, Any]:
        raise NotImplementedError


def _dumped(value: Any, **options: Any) -> Any:
    """A field's value as pydantic dumps it: containers copied, a model (a budget a copy
    was given) dumped with the same options; the rest (text, numbers) as it is, which
    is JSON already."""
    if isinstance(value, list):
        return [_dumped(v, **options) for v in value]
    if isinstance(value, dict):
        return {k: _dumped(v, **options) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return value.model_dump(**options)
    return value


@dataclass(frozen=True)
class PlainJob(_Plain):
    """A job of a flow built in code, with a JobSpec's fields and defaults."""

    run: str | list[str] | None = JOB_DEFAULTS["run"]
    shell: bool = JOB_DEFAULTS["shell"]
    cwd: str | None = JOB_DEFAULTS["cwd"]
    env: dict[str, str] = field(default_factory=JOB_FACTORIES["env"])
    secret_env: list[str] = field(default_factory=JOB_FACTORIES["secret_env"])
    tool: str | None = JOB_DEFAULTS["tool"]
    prompt: str | None = JOB_DEFAULTS["prompt"]
    model: str | None = JOB_DEFAULTS["model"]
    allowed_tools: list[str] | None = JOB_DEFAULTS["allowed_tools"]
    permission_mode: str | None = JOB_DEFAULTS["permission_mode"]
    max_turns: int | None = JOB_DEFAULTS["max_turns"]
    resume: str | None = JOB_DEFAULTS["resume"]
    extra_args: list[str] = field(default_factory=JOB_FACTORIES["extra_args"])
    home: str | None = JOB_DEFAULTS["home"]
    timeout: float | None = JOB_DEFAULTS["timeout"]
    idle_timeout: float | None = JOB_DEFAULTS["idle_timeout"]
    delay: float | None = JOB_DEFAULTS["delay"]
    kill_grace: float | None = JOB_DEFAULTS["kill_grace"]
    budget: BudgetSpec | None = JOB_DEFAULTS["budget"]
    needs: list[str] = field(default_factory=JOB_FACTORIES["needs"])
    if_: str | None = JOB_DEFAULTS["if_"]
    continue_on_error: bool = JOB_DEFAULTS["continue_on_error"]
    retries: int = JOB_DEFAULTS["retries"]
    retry_delay: float | None = JOB_DEFAULTS["retry_delay"]
    retry_max_delay: float | None = JOB_DEFAULTS["retry_max_delay"]
    retry_on: list[str | int] | None = JOB_DEFAULTS["retry_on"]
    outputs: dict[str, OutputSpec] = field(default_factory=JOB_FACTORIES["outputs"])
    matrix: dict[str, Any] | None = JOB_DEFAULTS["matrix"]
    priority: int = JOB_DEFAULTS["priority"]
    rehearse: RehearseSpec | None = JOB_DEFAULTS["rehearse"]
    # the fields given (pydantic's `model_fields_set`)
    _set: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def _field_defaults(cls) -> dict[str, Any]:
        return _JOB_ALL

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> PlainJob:
        """A copy with `update` applied, as given (pydantic's `model_copy` checks nothing)."""
        if not update:
            return self
        return dataclasses.replace(self, **update, _set=self._set | frozenset(update))


def _all_defaults(
    plain: type[Any], values: Mapping[str, Default], factories: Mapping[str, Factory]
) -> dict[str, Any]:
    """Every field's default, in the order of the fields (pydantic dumps in that order)."""
    names = [f.name for f in dataclasses.fields(plain) if f.name in values or f.name in factories]
    return {n: factories[n]() if n in factories else values[n] for n in names}


_JOB_ALL = _all_defaults(PlainJob, JOB_DEFAULTS, JOB_FACTORIES)


@dataclass(frozen=True)
class PlainFlow(_Plain):
    """A flow built in code, with a FlowSpec's fields and defaults."""

    jobs: Mapping[str, PlainJob]
    version: Literal[1] = FLOW_DEFAULTS["version"]
    name: str | None = FLOW_DEFAULTS["name"]
    concurrency: int | None = FLOW_DEFAULTS["concurrency"]
    stagger: float | None = FLOW_DEFAULTS["stagger"]
    fail_fast: bool = FLOW_DEFAULTS["fail_fast"]
    kill_grace: float | None = FLOW_DEFAULTS["kill_grace"]
    on_orphan: Literal["adopt", "kill"] = FLOW_DEFAULTS["on_orphan"]
    budget: BudgetSpec | None = FLOW_DEFAULTS["budget"]
    executor: str | None = FLOW_DEFAULTS["executor"]
    policy: list[str] | None = FLOW_DEFAULTS["policy"]
    defaults: dict[str, Any] = field(default_factory=FLOW_FACTORIES["defaults"])
    secret_names: list[str] = field(default_factory=FLOW_FACTORIES["secret_names"])
    _set: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def _field_defaults(cls) -> dict[str, Any]:
        return _FLOW_ALL

    def model_dump(
        self,
        *,
        mode: Dump = "python",
        exclude: set[str] | None = None,
        by_alias: bool | None = None,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
    ) -> dict[str, Any]:
        out = super().model_dump(
            mode=mode,
            exclude=exclude,
            by_alias=by_alias,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
        )
        if not (exclude and "jobs" in exclude) and not (exclude_unset and "jobs" not in self._set):
            out["jobs"] = {
                name: job.model_dump(
                    mode=mode,
                    by_alias=by_alias,
                    exclude_unset=exclude_unset,
                    exclude_defaults=exclude_defaults,
                )
                for name, job in self.jobs.items()
            }
        return out


# `jobs` (no default: a flow needs one) is dumped last, as FlowSpec, which declares it last
_FLOW_ALL = _all_defaults(PlainFlow, FLOW_DEFAULTS, FLOW_FACTORIES)

# what `plain_flow` takes: the keys `corral exec` writes (cli/run.py: _exec_document)
_COMMAND_KEYS = frozenset({"run", "timeout", "idle_timeout"})
_PROMPT_KEYS = frozenset({"tool", "prompt", "model", "timeout", "idle_timeout"})


def plain_flow(document: Mapping[str, Any]) -> PlainFlow | None:
    """The flow of `document` as `FlowSpec.model_validate` would make it, when it is one
    that `corral exec` builds and it is valid; else None (the caller validates it with
    the schema, which reports what is wrong)."""
    if set(document) != {"version", "name", "jobs"} or document["version"] != 1:
        return None
    name, jobs = document["name"], document["jobs"]
    if type(name) is not str or not isinstance(jobs, dict) or len(jobs) != 1:
        return None
    [(job_name, job)] = jobs.items()
    if job_name_problem(job_name) is not None or not isinstance(job, dict):
        return None
    plain = _plain_job(job)
    if plain is None:
        return None
    return PlainFlow(
        jobs={job_name: plain}, version=1, name=name, _set=frozenset({"version", "name", "jobs"})
    )


def _plain_job(job: Mapping[str, Any]) -> PlainJob | None:
    keys = frozenset(job)
    values: dict[str, Any] = {}
    if "run" in job:
        run = job["run"]
        if not keys <= _COMMAND_KEYS or type(run) is not list or not run:
            return None
        if not all(type(word) is str for word in run):
            return None
        values["run"] = list(run)
    else:
        if not keys <= _PROMPT_KEYS or not {"tool", "prompt"} <= keys:
            return None
        for key in ("tool", "prompt", "model"):
            if key in job:
                if type(job[key]) is not str:
                    return None
                values[key] = job[key]
    for key in ("timeout", "idle_timeout"):
        if key in job:
            try:
                values[key] = parse_duration(job[key])
            except ValueError:
                return None
    if values.get("timeout") == 0:
        return None  # the schema says why
    return PlainJob(**values, _set=keys)


if TYPE_CHECKING:  # mypy proves the plain specs are what the protocols ask for

    def _conforms(job: PlainJob, flow: PlainFlow) -> tuple[JobFields, FlowFields]:
        return job, flow
