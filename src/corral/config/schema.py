"""The pydantic model of a flow file. The only place where pydantic is used.

Every key is optional except `jobs`; unknown keys are errors. Durations accept
`90`, `90s`, `5m`, `1h30m` and become seconds (float).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from corral.durations import parse_duration
from corral.models import BudgetAction, BudgetLimits
from corral.plugins import skip_pydantic_plugin_scan

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


def _duration(value: Any) -> float:
    return parse_duration(value)


# A field read through a BeforeValidator is described by what a user may write, not by the
# value it becomes (pydantic would describe the float or the list only).
_NUMBER = r"[0-9][0-9_]*(\.[0-9]+)?"
_UNIT = r"([mM][sS]|[sSmMhHdD])"  # no inline flags: editors use ECMAScript regexes
DURATION_PATTERN = rf"^\s*{_NUMBER}\s*({_UNIT}(\s*{_NUMBER}\s*{_UNIT})*)?\s*$"

Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "description": "Seconds, or a duration such as 90s, 5m, 1h30m, 1.5h or 7d.",
        }
    ),
]


def _str_or_list(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


StrList = Annotated[
    list[str],
    BeforeValidator(_str_or_list),
    WithJsonSchema(
        {
            "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
            "description": "A list, or one string of comma-separated names.",
        }
    ),
]


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


PathList = Annotated[
    list[str],
    BeforeValidator(_one_or_list),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


skip_pydantic_plugin_scan()  # before the first model is built


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BudgetSpec(_Strict):
    """A limit in dollars and/or tokens. Tokens counted: input + cache writes + output."""

    usd: Decimal | None = Field(None, ge=0, description="Most dollars to spend.")
    tokens: int | None = Field(
        None,
        ge=0,
        description="Most tokens: fresh input + cache writes + output (cache reads excluded).",
    )
    on_exceed: Literal["warn", "stop", "kill"] = Field(
        "stop",
        description="warn: report only; stop: start no new job; kill: also stop jobs that breach.",
    )

    def limits(self) -> BudgetLimits:
        """The core's value of this budget."""
        return BudgetLimits(self.usd, self.tokens, BudgetAction(self.on_exceed))


class OutputSpec(_Strict):
    """A value a job exposes to later jobs as `jobs.NAME.outputs.KEY`."""

    regex: str | None = Field(
        None, description="First group (or whole match) of this regex in stdout."
    )
    json_path: str | None = Field(
        None, description="Dotted path into the job's result parsed as JSON."
    )
    file: str | None = Field(
        None, description="Contents of a file the job wrote (relative to cwd)."
    )


class RehearseUsage(_Strict):
    """Token counts the simulated model reports (Anthropic's convention: input is uncached)."""

    input: int = Field(12, ge=0)
    output: int = Field(11, ge=0)
    cache_read: int = Field(0, ge=0)
    cache_write: int = Field(0, ge=0)
    reasoning: int = Field(0, ge=0, description="Part of output spent thinking.")


class RehearseSpec(_Strict):
    """What the simulated model does for this job under `corral rehearse`."""

    mode: Literal["text", "tool", "slow", "hang", "big", "failed"] = "text"
    text: str | None = Field(None, description="The answer (text, tool, slow).")
    command: str | None = Field(None, description="tool: the shell command the model asks to run.")
    usage: RehearseUsage | None = None
    error: int | None = Field(
        None, ge=400, le=599, description="HTTP status to answer with: 429, 401, 500, 529 ..."
    )
    delay: Duration | None = Field(None, description="slow: pause between streamed events.")


class JobSpec(_Strict):
    """One job: a command (`run`) or an agent prompt (`tool` + `prompt`)."""

    # what to run
    run: str | list[str] | None = Field(
        None, description="Command: a list is an argv; a string is split like a shell would."
    )
    shell: bool = Field(False, description="Give `run` to /bin/sh -c instead of splitting it.")
    cwd: str | None = None
    env: dict[str, str] = Field(
        default_factory=dict, description="Merged over the parent environment; ${VAR} expands."
    )
    secret_env: StrList = Field(
        default_factory=list,
        description="Names of env entries whose values are secret: redacted wherever corral "
        "writes (names like *_KEY, *_TOKEN, *SECRET*, *PASSWORD* are secret anyway).",
    )
    # agent fields
    tool: str | None = Field(
        None, description="Agent CLI adapter: claude, codex, gemini, ... or generic."
    )
    prompt: str | None = None
    model: str | None = None
    allowed_tools: StrList | None = None
    permission_mode: str | None = None
    max_turns: int | None = Field(None, ge=1)
    resume: str | None = Field(None, description="Continue the agent session of this job.")
    extra_args: list[str] = Field(default_factory=list)
    home: str | None = Field(None, description="Private HOME for the CLI ('auto' for one per job).")
    # limits
    timeout: Duration | None = None
    idle_timeout: Duration | None = Field(
        None, description="No output for this long stops the job (agents: 10m; 0: never)."
    )
    delay: Duration | None = Field(None, description="Wait this long before starting.")
    kill_grace: Duration | None = Field(None, description="SIGTERM to SIGKILL grace (default 5s).")
    budget: BudgetSpec | None = None
    # graph
    needs: StrList = Field(default_factory=list)
    if_: str | None = Field(None, alias="if")
    continue_on_error: bool = False
    retries: int = Field(0, ge=0)
    retry_delay: Duration | None = None
    retry_max_delay: Duration | None = None
    retry_on: list[str | int] | None = None
    outputs: dict[str, OutputSpec] = Field(default_factory=dict)
    matrix: dict[str, Any] | None = Field(
        None,
        description=(
            "One job per combination of the axes' values (`name: [values]`), as GitHub "
            "does: `exclude` (list of partial combinations) removes, `include` (list of "
            "mappings) extends or adds; `max_parallel` caps how many run at once; "
            "`fail_fast` (default true) cancels the others when one fails."
        ),
        json_schema_extra={
            "properties": {
                "include": {"type": "array", "items": {"type": "object"}},
                "exclude": {"type": "array", "items": {"type": "object"}},
                "max_parallel": {"type": "integer", "minimum": 1},
                "fail_fast": {"type": "boolean"},
            },
            "additionalProperties": {"type": "array", "minItems": 1},
        },
    )
    priority: int = 0
    # rehearsal
    rehearse: RehearseSpec | None = None

    @field_validator("run")
    @classmethod
    def _run_not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and not (value.strip() if isinstance(value, str) else value):
            raise ValueError("run is empty: give a command such as `pytest -q`")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout_not_zero(cls, value: float | None) -> float | None:
        if value == 0:
            raise ValueError(
                "a timeout of 0 would stop the job at once: leave `timeout` out for no limit"
            )
        return value


JOB_FIELDS = frozenset(JobSpec.model_fields) | {"if"}
# `defaults` may hold any job field except these, which only make sense on one job
NOT_DEFAULTABLE = frozenset({"needs", "matrix", "outputs", "resume"})


class FlowSpec(_Strict):
    """A flow file."""

    version: Literal[1] = 1
    name: str | None = None
    concurrency: int | None = Field(
        None, ge=1, description="Most jobs at once (default: CPUs, at least 2)."
    )
    stagger: Duration | None = Field(None, description="Pause between two job launches.")
    fail_fast: bool = False
    kill_grace: Duration | None = None
    on_orphan: Literal["adopt", "kill"] = Field(
        "adopt",
        description="If corral dies mid-run: its jobs keep running and `corral resume` "
        "adopts them (adopt), or they are stopped with it (kill).",
    )
    budget: BudgetSpec | None = None
    executor: str | None = Field(
        None,
        description="Where the jobs run: an executor from the corral.executors entry points "
        "(default: local; `corral run --executor` overrides it).",
    )
    policy: PathList | None = Field(
        None,
        description="Rego policy files or folders (relative to this file) that must allow "
        "the flow before anything runs.",
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="Job fields applied to every job."
    )
    secret_names: StrList = Field(
        default_factory=list,
        description="More environment variable name patterns (fnmatch, any case) whose "
        "values are secret, on top of *_KEY, *_TOKEN, *SECRET*, *PASSWORD*.",
    )
    jobs: dict[str, JobSpec] = Field(min_length=1)

    @field_validator("jobs")
    @classmethod
    def _job_names(cls, jobs: dict[str, JobSpec]) -> dict[str, JobSpec]:
        for name in jobs:
            wrong = job_name_problem(name)
            if wrong is not None:  # the loader reports every one first, each at its place
                raise ValueError(wrong)
        return jobs


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors use to complete and check flow files."""
    schema = FlowSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "corral flow"
    # `defaults` takes job fields: point editors at the job schema without `required`
    schema["properties"]["defaults"] = {
        "$ref": "#/$defs/JobSpec",
        "description": "Job fields applied to every job.",
    }
    return schema
