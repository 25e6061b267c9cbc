"""Any command: the adapter that turns every `run:` job (and `tool: generic` with its
command in `extra_args`) into an argv. Its output is plain text: not parsed, and the
outcome is the exit status."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import ClassVar

from corral.config.fields import JobFields
from corral.errors import ToolError
from corral.tools.base import Invocation, Tool


class GenericTool(Tool):
    """Runs argv as given; output is read line by line without structure."""

    name: ClassVar[str] = "generic"
    supports: ClassVar[frozenset[str]] = frozenset({"extra_args", "home"})
    executable_names: ClassVar[tuple[str, ...]] = ()
    # plain text: corral reads no tokens from it (what a command prints never counts
    # against a budget), the last stdout line is its result
    parser: ClassVar[str | None] = None
    needs_prompt: ClassVar[bool] = False

    def find_executable(self, environ: Mapping[str, str]) -> str | None:
        # the command names its own executable; there is nothing to find
        return None

    def version(self, executable: str) -> str | None:
        return None

    def validate(self, job: JobFields) -> list[str]:
        problems = super().validate(job)
        if not job.extra_args and job.run is None:
            problems.append("generic needs a command: `run`, or the words after `--`")
        return problems

    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        """argv from `run` (a list as is, a string split like a shell would, or given to
        `/bin/sh -c` with `shell: true`), else from `extra_args`; `executable` is ignored."""
        run = job.run
        argv: tuple[str, ...]
        if run is None:
            if not job.extra_args:
                raise ToolError("generic needs a command: `run`, or the words after `--`")
            return Invocation(tuple(job.extra_args), self.home_env(job), None)
        if job.shell:
            argv = ("/bin/sh", "-c", run if isinstance(run, str) else shlex.join(run))
        elif isinstance(run, list):
            argv = tuple(run)
        else:
            try:
                argv = tuple(shlex.split(run))
            except ValueError as error:
                raise ToolError(
                    f"cannot split `run`: {error}", hint="check the quotes, or set shell: true"
                ) from None
        return Invocation(argv, self.home_env(job), None)
