"""Claude Code: `claude -p PROMPT --output-format stream-json --verbose ...`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from corral.config.fields import JobFields
from corral.tools.base import AGENT_FIELDS, DUMMY_KEY, Invocation, Rehearsal, Tool, Verified


class ClaudeTool(Tool):
    """Claude Code in print mode. Every agent field maps to a flag of its own."""

    name: ClassVar[str] = "claude"
    supports: ClassVar[frozenset[str]] = frozenset(AGENT_FIELDS)
    executable_names: ClassVar[tuple[str, ...]] = ("claude",)
    parser: ClassVar[str] = "claude-stream-json"
    verified: ClassVar[Verified | None] = Verified("2.1.329")
    # the native installer's place (`claude migrate-installer`)
    home_dirs: ClassVar[tuple[str, ...]] = (".claude/local",)
    output_formats: ClassVar[dict[str, str]] = {
        "stream-json": "claude-stream-json",
        "json": "claude-json",
    }
    rehearsable: ClassVar[bool] = True

    def rehearse(
        self, job: JobFields, *, base_url: str, home: Path, max_retries: int = 0
    ) -> Rehearsal:
        return Rehearsal(
            env={
                "ANTHROPIC_BASE_URL": base_url,
                "ANTHROPIC_API_KEY": DUMMY_KEY,
                # without these four it probes the base URL, resolves hosts and spools telemetry
                "DISABLE_TELEMETRY": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
            }
        )

    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        prompt = job.prompt or ""
        chosen, parser = self.chosen_format(job)
        fmt = chosen or "stream-json"
        flags: list[str] = []
        if chosen is None:
            flags += ["--output-format", fmt]
        # stream-json in print mode is refused without --verbose
        if fmt == "stream-json" and "--verbose" not in job.extra_args:
            flags.append("--verbose")
        if job.model:
            flags += ["--model", job.model]
        if job.allowed_tools:
            # one word: --allowedTools is variadic and would swallow following words
            flags += ["--allowedTools", ",".join(job.allowed_tools)]
        if job.permission_mode:
            # passed through: Claude validates its own modes and adds new ones often
            flags += ["--permission-mode", job.permission_mode]
        if job.max_turns is not None:
            flags += ["--max-turns", str(job.max_turns)]
        if resume_session:
            flags += ["--resume", resume_session]
        if job.budget is not None and job.budget.usd is not None:
            flags += ["--max-budget-usd", str(job.budget.usd)]
        flags += job.extra_args
        # `-p` is a boolean; the prompt is a positional. A slash command ("/review")
        # is an ordinary prompt to Claude Code and goes through unchanged.
        if prompt.startswith("-"):
            argv = [executable, "-p", *flags, "--", prompt]
        else:
            argv = [executable, "-p", prompt, *flags]
        return Invocation(tuple(argv), self.home_env(job), parser)
