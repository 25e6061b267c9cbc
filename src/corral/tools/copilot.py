"""GitHub Copilot CLI: `copilot -p PROMPT --output-format json [--model M] [...]`.

Its JSON lines carry no token counts: Copilot writes them to its session log,
`$COPILOT_HOME/session-state/<session id>/events.jsonl` (`session.usage_record` per model
call, `session.shutdown` with the per-model totals), which the adapter hands to the parser
once the process has ended. With `COPILOT_PROVIDER_BASE_URL` (bring your own key) it talks
OpenAI Chat Completions to that endpoint, and `COPILOT_OFFLINE=true` skips GitHub entirely.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from corral.config.fields import JobFields
from corral.tools.base import (
    DUMMY_KEY,
    Invocation,
    Rehearsal,
    SessionReport,
    Tool,
    Verified,
    prompt_args,
    rehearsal_env,
)

_ALLOW_ALL = ("--allow-all-tools",)
# the model a rehearsal names when the flow gives none
REHEARSAL_MODEL = "gpt-5.5"
# the session log records corral reads (the log also holds whole tool outputs)
_ACCOUNTING = ('"session.usage_record"', '"session.shutdown"', '"session.start"')


class CopilotTool(Tool):
    """Copilot CLI in prompt mode. Read-only shell commands run without approval; any
    other tool needs `--allow-all-tools` (permission_mode yolo or bypassPermissions)."""

    name: ClassVar[str] = "copilot"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"prompt", "model", "permission_mode", "resume", "extra_args", "home", "budget"}
    )
    executable_names: ClassVar[tuple[str, ...]] = ("copilot",)
    parser: ClassVar[str] = "copilot-jsonl"
    permission_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "default": (),
        "yolo": _ALLOW_ALL,
        "bypassPermissions": _ALLOW_ALL,
    }
    verified: ClassVar[Verified | None] = Verified("1.0.102")
    rehearsable: ClassVar[bool] = True

    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        argv = [executable, *prompt_args("-p", job.prompt or "", long_flag="--prompt")]
        argv += ["--output-format", "json"]
        if job.model:
            argv += ["--model", job.model]
        argv += self.permission_flags(job)
        if resume_session:
            argv += ["--resume", resume_session]
        argv += job.extra_args
        return Invocation(tuple(argv), self.home_env(job), self.parser)

    def home_env(self, job: JobFields) -> dict[str, str]:
        env = super().home_env(job)
        if env:
            # an inherited COPILOT_HOME would win over HOME/.copilot
            env["COPILOT_HOME"] = f"{env['HOME']}/.copilot"
        return env

    def rehearse(
        self, job: JobFields, *, base_url: str, home: Path, max_retries: int = 0
    ) -> Rehearsal:
        # Copilot unpacks its 190 MB package into the XDG cache on first start (6 s here);
        # a fresh home per job would do it every time, so the caller's cache is kept
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        env = {
            **rehearsal_env(home),
            "COPILOT_HOME": str(home / ".copilot"),
            "COPILOT_OFFLINE": "true",
            "COPILOT_PROVIDER_TYPE": "openai",
            "COPILOT_PROVIDER_BASE_URL": f"{base_url}/v1",
            "COPILOT_PROVIDER_API_KEY": DUMMY_KEY,
            "COPILOT_MODEL": job.model or REHEARSAL_MODEL,
            "COPILOT_AUTO_UPDATE": "false",
            "XDG_CACHE_HOME": cache,
        }
        return Rehearsal(env=env)

    def session_report(
        self, env: Mapping[str, str], session_id: str | None, *, model: str | None
    ) -> SessionReport | None:
        """The session log's lines: the token counts Copilot prints nowhere else."""
        if not session_id or "/" in session_id or session_id in (".", ".."):
            return None
        root = env.get("COPILOT_HOME") or f"{env.get('HOME', '')}/.copilot"
        log = Path(root) / "session-state" / session_id / "events.jsonl"
        try:
            with log.open(encoding="utf-8", errors="replace") as handle:
                lines = tuple(line for line in handle if any(m in line[:200] for m in _ACCOUNTING))
        except OSError:
            return None
        return SessionReport(source=f"copilot session log {log}", lines=lines)
