"""Turn a planned job into a concrete attempt: templates rendered, environment expanded,
argv built by the job's tool adapter (`generic` for a plain command), log folder chosen.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from corral.config.fields import JobFields
from corral.errors import InputError, ToolError
from corral.execute.executor import Adoption, JobRequest
from corral.plan import JobView, PlannedJob, RunInfo, render_job
from corral.plan.adapter import COMMAND_TOOL
from corral.redact import Redactor

if TYPE_CHECKING:
    from corral.tools.base import Invocation, Tool

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# `corral rehearse`: the job's spec pointed at the simulated provider (env, args, home)
Rehearse = Callable[[PlannedJob, JobFields, Path], JobFields]


def expand_env(values: Mapping[str, str], base: Mapping[str, str], job: str) -> dict[str, str]:
    """`${VAR}` and `${VAR:-default}` in a job's env, from the parent environment and
    the job's earlier entries. An unset variable without a default is an error."""
    out: dict[str, str] = {}
    for key, value in values.items():
        scope = {**base, **out}

        def substitute(
            match: re.Match[str], key: str = key, scope: Mapping[str, str] = scope
        ) -> str:
            name, default = match.group(1), match.group(2)
            if name in scope:
                return scope[name]
            if default is not None:
                return default
            raise ToolError(
                f"job '{job}': env.{key} uses ${{{name}}}, which is not set",
                hint=f"export {name}, or write ${{{name}:-default}}",
            )

        out[key] = _VAR.sub(substitute, value)
    return out


# An agent CLI that hangs (Claude Code's stream can stop without a result) or retries a
# connection for ever (Codex offline) must not hold a run for ever. Long silent tool
# calls need more: `idle_timeout:` raises it, `0` turns it off.
DEFAULT_AGENT_IDLE_TIMEOUT = 600.0


def idle_timeout(given: float | None, *, agent: bool) -> float | None:
    """The idle timeout a job gets: the one given, else 10 minutes for an agent (none for a
    command); 0 means none."""
    if given is None:
        return DEFAULT_AGENT_IDLE_TIMEOUT if agent else None
    return given or None


@dataclass
class RequestBuilder:
    """Builds the JobRequest of each attempt of one run (the scheduler calls it)."""

    base_dir: Path
    log_root: Path
    environ: Mapping[str, str]
    run_info: RunInfo
    kill_grace: float = 5.0
    rehearse: Rehearse | None = None
    # learns the secret values of each job's env as they are expanded (corral.redact)
    redactor: Redactor | None = None
    # jobs a dead corral left, to follow instead of starting (a resume's first attempts)
    adoptions: Mapping[str, Adoption] = field(default_factory=dict)
    # agent sessions of jobs a dead corral left unfinished: restarted jobs continue them
    continue_sessions: Mapping[str, str] = field(default_factory=dict)

    def log_dir(self, job: str, attempt: int) -> Path:
        folder = self.log_root / job
        return folder if attempt == 1 else folder / f"attempt-{attempt}"

    def __call__(self, job: PlannedJob, views: Mapping[str, JobView], attempt: int) -> JobRequest:
        spec = render_job(job, views, self.environ, self.run_info)
        env = dict(self.environ)
        expanded = expand_env(spec.env, self.environ, job.name)
        env.update(expanded)
        if self.redactor is not None:
            self.redactor.add_environ(expanded, spec.secret_env)
        cwd = str((self.base_dir / spec.cwd).resolve()) if spec.cwd else str(self.base_dir)
        env["PWD"] = cwd  # as a shell would: tools that read $PWD see where they run
        # every process of the job inherits these: scripts can use them, and `corral
        # resume` finds what a killed run left behind by them, even outside the group
        env["CORRAL_RUN_ID"] = self.run_info.id
        env["CORRAL_JOB"] = job.name
        log_dir = self.log_dir(job.name, attempt)
        model = spec.model
        if job.tool is None:
            from corral.tools import get_tool

            # a command keeps the user's HOME: `home:` is for agent CLIs (and is often
            # inherited from `defaults`, as agent fields are)
            invocation = _build(
                get_tool(COMMAND_TOOL),
                spec if spec.home is None else spec.model_copy(update={"home": None}),
                executable="",
                resume_session=None,
            )
            argv, parser, tool_name = invocation.argv, invocation.parser, COMMAND_TOOL
        else:
            argv, extra_env, parser, model = self._agent(job, job.tool, spec, views, env, log_dir)
            env.update(extra_env)
            tool_name = job.tool
        grace = spec.kill_grace if spec.kill_grace is not None else self.kill_grace
        _check_bytes(job.name, argv, env, cwd)
        adopt = self.adoptions.get(job.name) if attempt == 1 else None
        return JobRequest(
            job=job.name,
            attempt=attempt,
            argv=argv,
            cwd=cwd,
            env=env,
            log_dir=adopt.log_dir if adopt is not None else log_dir,
            tool=tool_name,
            model=model,
            parser=parser,
            timeout=spec.timeout,
            idle_timeout=idle_timeout(spec.idle_timeout, agent=job.tool is not None),
            kill_grace=grace,
            spec=spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
            adopt=adopt,
        )

    def _agent(
        self,
        job: PlannedJob,
        name: str,
        spec: JobFields,
        views: Mapping[str, JobView],
        env: dict[str, str],
        log_dir: Path,
    ) -> tuple[tuple[str, ...], dict[str, str], str | None, str | None]:
        from corral.tools import get_tool

        tool = get_tool(name)
        # `<job>/home`, one per job (log_dir.parent was the run's folder for a first attempt:
        # every job of the run shared one home)
        private_home = (self.log_root / job.name / "home").resolve()
        if spec.home:
            home = private_home if spec.home == "auto" else (self.base_dir / spec.home)
            home = home.resolve()
            home.mkdir(parents=True, exist_ok=True)
            spec = spec.model_copy(update={"home": str(home)})
        resume_session = None
        continued = self.continue_sessions.get(job.name)
        if continued and not spec.resume and "resume" in tool.supports:
            # restarted after a crash: the agent continues its session, not starts over
            resume_session = continued
        if spec.resume:
            view = views.get(spec.resume)
            resume_session = view.session_id if view else None
            if not resume_session:
                raise ToolError(
                    f"job '{job.name}': cannot resume '{spec.resume}': it reported no session id",
                    hint="the job to resume must be an agent job that ran before this one",
                )
        extra_env: dict[str, str] = {}
        if self.rehearse is not None:
            home = Path(spec.home) if spec.home else private_home
            home.mkdir(parents=True, exist_ok=True)
            rehearsed = self.rehearse(job, spec, home)
            extra_env = {k: v for k, v in rehearsed.env.items() if spec.env.get(k) != v}
            spec = rehearsed
        executable = tool.find_executable({**env, **extra_env})
        if executable is None:
            raise ToolError(
                f"{tool.name} is not installed (job '{job.name}')",
                hint=f"install it, put it on PATH, or set {tool.env_var}; see `corral tools`",
            )
        invocation = _build(tool, spec, executable=executable, resume_session=resume_session)
        return (
            tuple(invocation.argv),
            {**dict(invocation.env), **extra_env},
            invocation.parser,
            spec.model,
        )


def _build(
    tool: Tool, spec: JobFields, *, executable: str, resume_session: str | None
) -> Invocation:
    """The adapter's argv; whatever it raises on this job's data fails the job alone."""
    try:
        return tool.build(spec, executable=executable, resume_session=resume_session)
    except ToolError:
        raise
    except Exception as error:
        raise ToolError(
            f"the {tool.name} adapter cannot build the command: {type(error).__name__}: {error}"
        ) from error


def _check_bytes(job: str, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> None:
    """No process takes a NUL byte in its argv, environment or directory: say where it is
    (the value often comes from what an upstream job printed)."""
    # one C-level scan of everything joined; the places are named only when one holds a NUL
    if "\0" not in "".join(itertools.chain(argv, env.keys(), env.values(), (cwd,))):
        return
    places = [(f"argv[{i}]", a) for i, a in enumerate(argv)]
    places += [(f"env {k}", k + v) for k, v in env.items()]
    places.append(("cwd", cwd))
    for where, text in places:
        if "\0" in text:
            raise InputError(
                f"job '{job}': its {where} holds a NUL byte, which no process can take",
                hint="an interpolated value carried it: clean it upstream, or pass the "
                "value through a file (outputs.file)",
            )


def default_environ() -> dict[str, str]:
    """The environment jobs start from: corral's own."""
    return dict(os.environ)
