"""OpenCode: `opencode run --title --format json [--model P/M] [--session ID] ... PROMPT`."""

from __future__ import annotations

import contextlib
import json
import sqlite3
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
    write_json,
)

_AUTO = ("--auto",)
# the provider/model a rehearsal names when the flow gives none
REHEARSAL_MODEL = "corral/sim-model"


class OpenCodeTool(Tool):
    """`opencode run`, which prints one JSON event per line with `--format json`.

    Models are named `provider/model`. `--title` (empty) names the session after the
    prompt: otherwise OpenCode asks the model for a title in a call whose tokens its JSON
    never reports.
    """

    name: ClassVar[str] = "opencode"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"prompt", "model", "permission_mode", "resume", "extra_args", "home", "budget"}
    )
    executable_names: ClassVar[tuple[str, ...]] = ("opencode",)
    parser: ClassVar[str] = "opencode-json"
    # the curl installer's place
    home_dirs: ClassVar[tuple[str, ...]] = (".opencode/bin",)
    # OpenCode's own permission config decides; `--auto` approves whatever it would ask
    permission_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "default": (),
        "auto": _AUTO,
        "yolo": _AUTO,
        "bypassPermissions": _AUTO,
    }
    verified: ClassVar[Verified | None] = Verified("1.18.33")
    rehearsable: ClassVar[bool] = True

    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        argv = [executable, "run"]
        if not _has_flag(job.extra_args, "--title"):
            argv.append("--title")  # before another option: an empty title
        argv += ["--format", "json"]
        if job.model:
            argv += ["--model", job.model]
        argv += self.permission_flags(job)
        if resume_session:
            argv += ["--session", resume_session]
        argv += job.extra_args
        # the message is a variadic positional: it goes last
        argv += prompt_args(None, job.prompt or "")
        return Invocation(tuple(argv), self.home_env(job), self.parser)

    def home_env(self, job: JobFields) -> dict[str, str]:
        env = super().home_env(job)
        if env:
            env |= xdg_dirs(Path(env["HOME"]))
        return env

    def rehearse(
        self, job: JobFields, *, base_url: str, home: Path, max_retries: int = 0
    ) -> Rehearsal:
        # the job's provider is redefined as an OpenAI-compatible one at the simulated
        # provider, so the model keeps the name the flow gave it
        model = job.model or REHEARSAL_MODEL
        provider, _, model_id = model.partition("/")
        if not model_id:
            provider, model_id = "corral", provider
        config = {
            "$schema": "https://opencode.ai/config.json",
            "autoupdate": False,
            "share": "disabled",
            "provider": {
                provider: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "corral simulated provider",
                    "options": {"baseURL": f"{base_url}/v1", "apiKey": DUMMY_KEY},
                    "models": {model_id: {"name": model_id}},
                }
            },
            "model": f"{provider}/{model_id}",
        }
        write_json(home / ".config" / "opencode" / "opencode.json", config)
        env = {
            **rehearsal_env(home),
            **xdg_dirs(home),
            "OPENCODE_DISABLE_MODELS_FETCH": "1",
            "OPENCODE_DISABLE_AUTOUPDATE": "1",
            # OpenCode installs a plugin package into each config folder in the background;
            # offline npm fails that at once instead of reaching for the registry
            "npm_config_offline": "true",
        }
        spec: dict[str, object] = {} if job.model else {"model": model}
        return Rehearsal(env=env, spec=spec)

    def session_report(
        self, env: Mapping[str, str], session_id: str | None, *, model: str | None
    ) -> SessionReport | None:
        """The model OpenCode used when the flow named none, from its session database."""
        if model is not None or not session_id:
            return None
        data = env.get("XDG_DATA_HOME") or f"{env.get('HOME', '')}/.local/share"
        database = Path(data) / "opencode" / "opencode.db"
        used = _session_model(database, session_id)
        if used is None:
            return None
        return SessionReport(source=f"opencode session database {database}", model=used)


def xdg_dirs(home: Path) -> dict[str, str]:
    """OpenCode keeps its state in XDG folders; inherited XDG_* would escape the home."""
    return {
        "XDG_CONFIG_HOME": f"{home}/.config",
        "XDG_DATA_HOME": f"{home}/.local/share",
        "XDG_STATE_HOME": f"{home}/.local/state",
        "XDG_CACHE_HOME": f"{home}/.cache",
    }


def _has_flag(args: list[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in args)


def _session_model(database: Path, session_id: str) -> str | None:
    """`provider/model` of the session's last assistant message, read-only; None if unknown."""
    if not database.is_file():
        return None
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2.0)
        ) as connection:
            rows = connection.execute(
                "SELECT data FROM message WHERE session_id = ? ORDER BY time_created DESC",
                (session_id,),
            ).fetchall()
    except sqlite3.Error:
        return None
    for (data,) in rows:
        try:
            info = json.loads(data)
        except (TypeError, ValueError):
            continue
        if isinstance(info, dict) and info.get("role") == "assistant" and info.get("modelID"):
            provider = info.get("providerID")
            return f"{provider}/{info['modelID']}" if provider else str(info["modelID"])
    return None
