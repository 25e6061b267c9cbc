"""OpenCode: `opencode run --format json [--model P/M] [--session ID] PROMPT`."""

from __future__ import annotations

from typing import ClassVar

from corral.config.schema import JobSpec
from corral.tools.base import Invocation, Tool, prompt_args


class OpenCodeTool(Tool):
    """`opencode run`, which prints one JSON event per line with `--format json`.
    Models are named `provider/model`; permissions come from opencode's own config."""

    name: ClassVar[str] = "opencode"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"prompt", "model", "resume", "extra_args", "home", "budget"}
    )
    executable_names: ClassVar[tuple[str, ...]] = ("opencode",)
    parser: ClassVar[str] = "opencode-json"
    # the curl installer's place
    home_dirs: ClassVar[tuple[str, ...]] = (".opencode/bin",)

    def build(self, job: JobSpec, *, executable: str, resume_session: str | None) -> Invocation:
        argv = [executable, "run", "--format", "json"]
        if job.model:
            argv += ["--model", job.model]
        if resume_session:
            argv += ["--session", resume_session]
        argv += job.extra_args
        # the message is a variadic positional: it goes last
        argv += prompt_args(None, job.prompt or "")
        return Invocation(tuple(argv), self.home_env(job), self.parser)

    def home_env(self, job: JobSpec) -> dict[str, str]:
        env = super().home_env(job)
        if env:
            # opencode keeps state in XDG directories; inherited XDG_* would escape HOME
            home = env["HOME"]
            env |= {
                "XDG_CONFIG_HOME": f"{home}/.config",
                "XDG_DATA_HOME": f"{home}/.local/share",
                "XDG_STATE_HOME": f"{home}/.local/state",
                "XDG_CACHE_HOME": f"{home}/.cache",
            }
        return env
