"""Any command. Flow jobs with `run:` are started by the runner itself; this adapter
serves `corral exec -- CMD ...`, where the command arrives as extra_args."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import ClassVar

from corral.config.schema import JobSpec
from corral.errors import ToolError
from corral.tools.base import Invocation, Tool


class GenericTool(Tool):
    """Runs argv as given; output is read line by line without structure."""

    name: ClassVar[str] = "generic"
    supports: ClassVar[frozenset[str]] = frozenset({"extra_args", "home"})
    executable_names: ClassVar[tuple[str, ...]] = ()
    parser: ClassVar[str] = "generic"
    needs_prompt: ClassVar[bool] = False

    def find_executable(self, environ: Mapping[str, str]) -> str | None:
        # the command names its own executable; there is nothing to find
        return None

    def version(self, executable: str) -> str | None:
        return None

    def validate(self, job: JobSpec) -> list[str]:
        problems = super().validate(job)
        if not job.extra_args and job.run is None:
            problems.append("generic needs a command: `run`, or the words after `--`")
        return problems

    def build(self, job: JobSpec, *, executable: str, resume_session: str | None) -> Invocation:
        """argv from extra_args, else from `run`; `executable` is ignored."""
        argv: list[str]
        if job.extra_args:
            argv = list(job.extra_args)
        elif isinstance(job.run, list):
            argv = list(job.run)
        elif isinstance(job.run, str):
            argv = ["/bin/sh", "-c", job.run] if job.shell else shlex.split(job.run)
        else:
            raise ToolError("generic needs a command: `run`, or the words after `--`")
        return Invocation(tuple(argv), self.home_env(job), self.parser)
