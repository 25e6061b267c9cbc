"""Cursor Agent: `cursor-agent -p --output-format stream-json --trust [flags] PROMPT`."""

from __future__ import annotations

from typing import ClassVar

from corral.config.fields import JobFields
from corral.tools.base import Invocation, Tool, prompt_args

_FORCE = ("--force",)


class CursorAgentTool(Tool):
    """Cursor's agent CLI in print mode. `--trust` because a headless run cannot answer
    the workspace-trust question and would exit 1."""

    name: ClassVar[str] = "cursor-agent"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"prompt", "model", "permission_mode", "resume", "extra_args", "home", "budget"}
    )
    executable_names: ClassVar[tuple[str, ...]] = ("cursor-agent",)
    parser: ClassVar[str] = "cursor-stream-json"
    permission_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "default": (),
        "force": _FORCE,
        "plan": ("--mode", "plan"),
        "ask": ("--mode", "ask"),
        "bypassPermissions": _FORCE,
        "yolo": _FORCE,
    }

    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        argv = [executable, "-p", "--output-format", "stream-json", "--trust"]
        if job.model:
            argv += ["--model", job.model]
        argv += self.permission_flags(job)
        if resume_session:
            argv += ["--resume", resume_session]
        argv += job.extra_args
        # `-p` is a boolean here; the prompt is the positional, last
        argv += prompt_args(None, job.prompt or "")
        return Invocation(tuple(argv), self.home_env(job), self.parser)
