"""OpenAI Codex: `codex exec --json --skip-git-repo-check [flags] [resume SESSION] PROMPT`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
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
)

_READ_ONLY = ("--sandbox", "read-only")
_WRITE = ("--sandbox", "workspace-write")
_FULL = ("--sandbox", "danger-full-access")
_BYPASS = ("--dangerously-bypass-approvals-and-sandbox",)
# a Codex session id, as `thread.started` names it and its rollout file ends
_SESSION_ID = re.compile(r"^[0-9A-Za-z-]{8,64}$")

REHEARSAL_PROVIDER = "corral_sim"  # the name of the custom model provider in Codex's config
REHEARSAL_KEY_VAR = "CORRAL_SIM_API_KEY"  # the env var Codex reads the key from (its env_key)
# the model Codex gets when a rehearsal names none: its default uses "code mode" tools
REHEARSAL_MODEL = "gpt-5.5"


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

    verified: ClassVar[Verified | None] = Verified("0.169.0")

    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        argv = [executable, "exec"]
        # corral picks each job's cwd on purpose, often a scratch directory outside git,
        # where Codex refuses to start without --skip-git-repo-check. Each flag is added
        # only when the user has not: Codex exits 2 on a flag given twice.
        for flag in ("--json", "--skip-git-repo-check"):
            if flag not in job.extra_args:
                argv.append(flag)
        if job.model:
            argv += ["--model", job.model]
        argv += self.permission_flags(job)
        argv += job.extra_args
        if resume_session:
            # exec's options must come before the subcommand: `resume` rejects -s, -C ...
            argv += ["resume", resume_session]
        argv += prompt_args(None, job.prompt or "")
        return Invocation(tuple(argv), self.home_env(job), self.parser)

    rehearsable: ClassVar[bool] = True

    def rehearse(
        self, job: JobFields, *, base_url: str, home: Path, max_retries: int = 0
    ) -> Rehearsal:
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        table = f"model_providers.{REHEARSAL_PROVIDER}"
        settings = {
            "model_provider": REHEARSAL_PROVIDER,
            f"{table}.name": "corral simulated provider",
            # Codex posts to {base_url}/responses, so the API version goes into the base URL
            f"{table}.base_url": f"{base_url}/v1",
            f"{table}.env_key": REHEARSAL_KEY_VAR,
            f"{table}.wire_api": "responses",
            f"{table}.request_max_retries": max_retries,
            f"{table}.stream_max_retries": max_retries,
        }
        args: list[str] = []
        for key, value in settings.items():
            args += ["-c", f"{key}={json.dumps(value)}"]  # `-c key=value` reads value as TOML
        return Rehearsal(
            env={"CODEX_HOME": str(codex_home), REHEARSAL_KEY_VAR: DUMMY_KEY},
            extra_args=tuple(args),
            spec={} if job.model is not None else {"model": REHEARSAL_MODEL},
        )

    def home_env(self, job: JobFields) -> dict[str, str]:
        env = super().home_env(job)
        if env:
            # an inherited CODEX_HOME would win over HOME/.codex
            env["CODEX_HOME"] = f"{env['HOME']}/.codex"
        return env

    def session_report(
        self, env: Mapping[str, str], session_id: str | None, *, model: str | None
    ) -> SessionReport | None:
        """The model Codex used when the flow named none: its `--json` output never says.

        The session's rollout file (`$CODEX_HOME/sessions/Y/M/D/rollout-*-<id>.jsonl`)
        records each turn's model; without one, `model` in `$CODEX_HOME/config.toml`
        (of the active profile, if any) is what Codex would have used.
        """
        if model is not None:
            return None
        codex_home = Path(env.get("CODEX_HOME") or f"{env.get('HOME', '')}/.codex")
        if session_id and _SESSION_ID.match(session_id):
            pattern = f"sessions/*/*/*/rollout-*-{session_id}.jsonl"
            for rollout in sorted(codex_home.glob(pattern), reverse=True):
                used = rollout_model(_read_lines(rollout))
                if used:
                    return SessionReport(source=f"codex session file {rollout}", model=used)
        config = codex_home / "config.toml"
        used = config_model(config)
        if used:
            return SessionReport(source=f"codex config {config}", model=used)
        return None


def rollout_model(lines: Iterable[str]) -> str | None:
    """The model of the last turn in a Codex rollout file (`turn_context.payload.model`)."""
    found = None
    for line in lines:
        if '"turn_context"' not in line[:200]:
            continue  # tool outputs make other lines long: only turn contexts are decoded
        try:
            record = json.loads(line)
        except ValueError:
            continue
        payload = record.get("payload") if isinstance(record, dict) else None
        if record.get("type") == "turn_context" and isinstance(payload, dict):
            model = payload.get("model")
            if isinstance(model, str) and model:
                found = model
    return found


def config_model(path: Path) -> str | None:
    """`model` from a Codex config.toml: the active profile's, else the top-level one."""
    import tomllib  # here: every run loads this adapter, few read a Codex config

    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    profile = config.get("profile")
    profiles = config.get("profiles")
    if isinstance(profile, str) and isinstance(profiles, dict):
        chosen = profiles.get(profile)
        if isinstance(chosen, dict) and isinstance(chosen.get("model"), str):
            return str(chosen["model"])
    model = config.get("model")
    return model if isinstance(model, str) and model else None


def _read_lines(path: Path) -> Iterable[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield from handle
    except OSError:
        return
