"""OpenAI Codex: `codex exec --json --skip-git-repo-check [flags] [resume SESSION] PROMPT`."""

from __future__ import annotations

from typing import ClassVar

from corral.config.schema import JobSpec
from corral.tools.base import Invocation, Tool, prompt_args

_READ_ONLY = ("--sandbox", "read-only")
_WRITE = ("--sandbox", "workspace-write")
_FULL = ("--sandbox", "danger-full-access")
_BYPASS = ("--dangerously-bypass-approvals-and-sandbox",)


class CodexTool(Tool):
    """`codex exec` with JSONL events on stdout. The runner closes stdin, which Codex
    would otherwise read and append to the prompt."""

    name: ClassVar[str] = "codex"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"prompt", "model", "permission_mode", "resume", "extra_args", "home", "budget"}
    )
    executable_names: ClassVar[tuple[str, ...]] = ("codex",)
    parser: ClassVar[str] = "codex-jsonl"
    # Codex's own sandbox names, plus Claude's mode names mapped to the nearest sandbox
    permission_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "read-only": _READ_ONLY,
        "workspace-write": _WRITE,
        "danger-full-access": _FULL,
        "plan": _READ_ONLY,
        "default": (),
        "acceptEdits": _WRITE,
        "bypassPermissions": _BYPASS,
        "yolo": _BYPASS,
    }

    def build(self, job: JobSpec, *, executable: str, resume_session: str | None) -> Invocation:
        # corral picks each job's cwd on purpose, often a scratch directory outside git;
        # Codex would refuse to start there without --skip-git-repo-check
        argv = [executable, "exec", "--json", "--skip-git-repo-check"]
        if job.model:
            argv += ["--model", job.model]
        argv += self.permission_flags(job)
        argv += job.extra_args
        if resume_session:
            # exec's options must come before the subcommand: `resume` rejects -s, -C ...
            argv += ["resume", resume_session]
        argv += prompt_args(None, job.prompt or "")
        return Invocation(tuple(argv), self.home_env(job), self.parser)

    def home_env(self, job: JobSpec) -> dict[str, str]:
        env = super().home_env(job)
        if env:
            # an inherited CODEX_HOME would win over HOME/.codex
            env["CODEX_HOME"] = f"{env['HOME']}/.codex"
        return env
