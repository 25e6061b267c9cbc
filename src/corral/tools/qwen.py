"""Qwen Code: `qwen --output-format stream-json [-m MODEL] [--approval-mode M] ... PROMPT`.

Qwen Code is a fork of Gemini CLI and keeps its headless flags, except that the prompt is
a positional word (`-p` still works in 0.24 but is deprecated). Its default API is OpenAI
Chat Completions (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_MODEL`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from corral.config.fields import JobFields
from corral.tools.base import (
    DUMMY_KEY,
    Invocation,
    Rehearsal,
    Tool,
    Verified,
    prompt_args,
    rehearsal_env,
    wants_shell,
    write_json,
)

_YOLO = ("--approval-mode", "yolo")
_AUTO_EDIT = ("--approval-mode", "auto-edit")
_PLAN = ("--approval-mode", "plan")
_DEFAULT = ("--approval-mode", "default")
_AUTO = ("--approval-mode", "auto")

# the model a rehearsal names when the flow gives none (any name works against the provider)
REHEARSAL_MODEL = "qwen3-coder-plus"


class QwenTool(Tool):
    """Qwen Code in headless mode; its stream-json follows Claude Code's events."""

    name: ClassVar[str] = "qwen"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"prompt", "model", "permission_mode", "resume", "extra_args", "home", "budget"}
    )
    executable_names: ClassVar[tuple[str, ...]] = ("qwen",)
    parser: ClassVar[str] = "qwen-stream-json"
    # headless Qwen denies the shell unless the approval mode allows it (yolo)
    permission_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "default": _DEFAULT,
        "auto-edit": _AUTO_EDIT,
        "auto": _AUTO,
        "yolo": _YOLO,
        "plan": _PLAN,
        "acceptEdits": _AUTO_EDIT,
        "bypassPermissions": _YOLO,
    }
    # Qwen's `json` is one array printed at the end; no parser reads it
    output_formats: ClassVar[dict[str, str]] = {"stream-json": "qwen-stream-json"}
    verified: ClassVar[Verified | None] = Verified("0.24.4")
    rehearsable: ClassVar[bool] = True

    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        argv = [executable, "--output-format", "stream-json"]
        if job.model:
            argv += ["-m", job.model]
        argv += self.permission_flags(job)
        if resume_session:
            argv += ["--resume", resume_session]
        argv += job.extra_args
        # the positional prompt goes last ('--' in front when it starts with '-')
        argv += prompt_args(None, job.prompt or "")
        return Invocation(tuple(argv), self.home_env(job), self.parser)

    def rehearse(
        self, job: JobFields, *, base_url: str, home: Path, max_retries: int = 0
    ) -> Rehearsal:
        settings = {
            "security": {"auth": {"selectedType": "openai"}},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
            "general": {"enableAutoUpdate": False},
            # after each run a background "memory" call to the model would add tokens
            # (counted in the result) and seconds; rehearsals leave it out
            "memory": {"enableManagedAutoMemory": False},
            # honoured for plain requests; a streamed call still retries 429 up to 7 times
            # (it waits the retry-after the provider sends)
            "model": {"generationConfig": {"maxRetries": max_retries}},
        }
        write_json(home / ".qwen" / "settings.json", settings)
        env = {
            **rehearsal_env(home),
            "OPENAI_BASE_URL": f"{base_url}/v1",
            "OPENAI_API_KEY": DUMMY_KEY,
            "OPENAI_MODEL": job.model or REHEARSAL_MODEL,
            "QWEN_CODE_SUPPRESS_YOLO_WARNING": "1",
        }
        spec: dict[str, object] = {}
        if wants_shell(job) and job.permission_mode is None:
            spec["permission_mode"] = "yolo"  # headless Qwen offers its shell only then
        return Rehearsal(env=env, spec=spec)
