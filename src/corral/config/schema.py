"""The pydantic model of a flow file. The only place where pydantic is used.

Every key is optional except `jobs`; unknown keys are errors. Durations accept
`90`, `90s`, `5m`, `1h30m` and become seconds (float).
"""

from __future__ import annotations

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

from corral.config.fields import FLOW_DEFAULTS as _F
from corral.config.fields import FLOW_FACTORIES as _FF
from corral.config.fields import JOB_DEFAULTS as _J
from corral.config.fields import JOB_FACTORIES as _JF
from corral.config.fields import job_name_problem
from corral.durations import parse_duration
from corral.models import BudgetAction, BudgetLimits
from corral.plugins import skip_pydantic_plugin_scan


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
        _J["run"], description="Command: a list is an argv; a string is split like a shell would."
    )
    shell: bool = Field(
        _J["shell"], description="Give `run` to /bin/sh -c instead of splitting it."
    )
    cwd: str | None = _J["cwd"]
    env: dict[str, str] = Field(
        default_factory=_JF["env"],
        description="Merged over the parent environment; ${VAR} expands.",
    )
    secret_env: StrList = Field(
        default_factory=_JF["secret_env"],
        description="Names of env entries whose values are secret: redacted wherever corral "
        "writes (names like *_KEY, *_TOKEN, *SECRET*, *PASSWORD* are secret anyway).",
    )
    # agent fields
    tool: str | None = Field(
        _J["tool"], description="Agent CLI adapter: claude, codex, gemini, ... or generic."
    )
    prompt: str | None = _J["prompt"]
    model: str | None = _J["model"]
    allowed_tools: StrList | None = _J["allowed_tools"]
    permission_mode: str | None = _J["permission_mode"]
    max_turns: int | None = Field(_J["max_turns"], ge=1)
    resume: str | None = Field(_J["resume"], description="Continue the agent session of this job.")
    extra_args: list[str] = Field(default_factory=_JF["extra_args"])
    home: str | None = Field(
        _J["home"], description="Private HOME for the CLI ('auto' for one per job)."
    )
    # limits
    timeout: Duration | None = _J["timeout"]
    idle_timeout: Duration | None = Field(
        _J["idle_timeout"],
        description="No output for this long stops the job (agents: 10m; 0: never).",
    )
    delay: Duration | None = Field(_J["delay"], description="Wait this long before starting.")
    kill_grace: Duration | None = Field(
        _J["kill_grace"], description="SIGTERM to SIGKILL grace (default 5s)."
    )
    budget: BudgetSpec | None = _J["budget"]
    # graph
    needs: StrList = Field(default_factory=_JF["needs"])
    if_: str | None = Field(_J["if_"], alias="if")
    continue_on_error: bool = _J["continue_on_error"]
    retries: int = Field(_J["retries"], ge=0)
    retry_delay: Duration | None = _J["retry_delay"]
    retry_max_delay: Duration | None = _J["retry_max_delay"]
    retry_on: list[str | int] | None = _J["retry_on"]
    outputs: dict[str, OutputSpec] = Field(default_factory=_JF["outputs"])
    matrix: dict[str, Any] | None = Field(
        _J["matrix"],
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
    priority: int = _J["priority"]
    # rehearsal
    rehearse: RehearseSpec | None = _J["rehearse"]

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


class FlowSpec(_Strict):
    """A flow file."""

    version: Literal[1] = _F["version"]
    name: str | None = _F["name"]
    concurrency: int | None = Field(
        _F["concurrency"], ge=1, description="Most jobs at once (default: CPUs, at least 2)."
    )
    stagger: Duration | None = Field(_F["stagger"], description="Pause between two job launches.")
    fail_fast: bool = _F["fail_fast"]
    kill_grace: Duration | None = _F["kill_grace"]
    on_orphan: Literal["adopt", "kill"] = Field(
        _F["on_orphan"],
        description="If corral dies mid-run: its jobs keep running and `corral resume` "
        "adopts them (adopt), or they are stopped with it (kill).",
    )
    budget: BudgetSpec | None = _F["budget"]
    executor: str | None = Field(
        _F["executor"],
        description="Where the jobs run: an executor from the corral.executors entry points "
        "(default: local; `corral run --executor` overrides it).",
    )
    policy: PathList | None = Field(
        _F["policy"],
        description="Rego policy files or folders (relative to this file) that must allow "
        "the flow before anything runs.",
    )
    defaults: dict[str, Any] = Field(
        default_factory=_FF["defaults"], description="Job fields applied to every job."
    )
    secret_names: StrList = Field(
        default_factory=_FF["secret_names"],
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
