"""Gemini CLI: `gemini -p PROMPT --output-format stream-json [-m MODEL] [--approval-mode M]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from corral.config.fields import JobFields
from corral.tools.base import DUMMY_KEY, Invocation, Rehearsal, Tool, Verified, prompt_args

_YOLO = ("--approval-mode", "yolo")
_AUTO_EDIT = ("--approval-mode", "auto_edit")
_PLAN = ("--approval-mode", "plan")
_DEFAULT = ("--approval-mode", "default")


class GeminiTool(Tool):
    """Gemini CLI in headless mode (`-p`). It has no turn or tool-list flags corral could
    map; the shell tool exists in headless mode only with approval mode yolo."""

    name: ClassVar[str] = "gemini"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"prompt", "model", "permission_mode", "resume", "extra_args", "home", "budget"}
    )
    executable_names: ClassVar[tuple[str, ...]] = ("gemini",)
    parser: ClassVar[str] = "gemini-stream-json"
    # `gemini --version` starts Node twice (it relaunches itself): 4 s on a busy machine
    version_timeout: ClassVar[float] = 15.0
    verified: ClassVar[Verified | None] = Verified("0.61.0")
    # --approval-mode rather than the older --yolo, which newer releases deprecate and
    # refuse to combine with --approval-mode
    permission_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "default": _DEFAULT,
        "auto_edit": _AUTO_EDIT,
        "yolo": _YOLO,
        "plan": _PLAN,
        "acceptEdits": _AUTO_EDIT,
        "bypassPermissions": _YOLO,
    }
    output_formats: ClassVar[dict[str, str]] = {
        "stream-json": "gemini-stream-json",
        "json": "gemini-json",
    }

    rehearsable: ClassVar[bool] = True

    def rehearse(
        self, job: JobFields, *, base_url: str, home: Path, max_retries: int = 0
    ) -> Rehearsal:
        settings = {
            # the base URL alone selects the "gateway" auth type, which headless mode rejects
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
            "general": {
                "enableAutoUpdate": False,
                "enableAutoUpdateNotification": False,
                "maxAttempts": max_retries + 1,
            },
        }
        folder = home / ".gemini"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        # headless Gemini offers its shell tool only in yolo mode: a rehearsal that asks
        # the model to run commands needs it
        wants_shell = job.rehearse is not None and job.rehearse.mode in ("tool", "big")
        spec = {"permission_mode": "yolo"} if wants_shell and job.permission_mode is None else {}
        return Rehearsal(
            env={
                "GOOGLE_GEMINI_BASE_URL": base_url,
                "GEMINI_API_KEY": DUMMY_KEY,
                # a fresh home trusts no folder, and headless mode exits 55 in an untrusted one
                "GEMINI_CLI_TRUST_WORKSPACE": "true",
            },
            spec=spec,
        )

    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        chosen, parser = self.chosen_format(job)
        # yargs would read a prompt starting with '-' as a flag: use --prompt=...
        argv = [executable, *prompt_args("-p", job.prompt or "", long_flag="--prompt")]
        if chosen is None:
            argv += ["--output-format", "stream-json"]
        if job.model:
            argv += ["-m", job.model]
        argv += self.permission_flags(job)
        if resume_session:
            argv += ["--resume", resume_session]
        argv += job.extra_args
        return Invocation(tuple(argv), self.home_env(job), parser)
