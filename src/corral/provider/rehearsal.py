"""Point one real agent CLI at the simulated provider: settings files, env vars and flags."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from corral.config.schema import JobSpec
from corral.provider.wire import JsonObject

TOOLS = ("claude", "codex", "gemini")  # set up here; the others through Tool.rehearse
DUMMY_KEY = "dummy"
CODEX_PROVIDER = "corral_sim"  # the name of the custom model provider in Codex's config
CODEX_KEY_VAR = "CORRAL_SIM_API_KEY"  # the env var Codex reads the key from (its env_key)


@dataclass(frozen=True)
class Rehearsal:
    """What one CLI run needs to talk only to the simulated provider.

    `env` is laid over the caller's environment (keep PATH: Codex and Gemini start Node).
    `extra_args` go right after the subcommand for Codex (`codex exec <extra_args> PROMPT`)
    and anywhere before the prompt for Claude and Gemini.
    """

    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    spec: dict[str, object] = field(default_factory=dict)  # JobSpec updates


def rehearsable() -> tuple[str, ...]:
    """Every tool `corral rehearse` can point at the simulated provider."""
    from corral.tools import all_tools

    hooked = [name for name, tool in all_tools().items() if tool.rehearsable]
    return tuple(dict.fromkeys((*TOOLS, *hooked)))


def prepare(
    tool: str,
    base_url: str,
    home: Path,
    *,
    max_retries: int = 0,
    job: JobSpec | None = None,
) -> Rehearsal:
    """Write `tool`'s settings into the private `home` and return its env and flags.

    `base_url` is the provider's URL, usually `provider.scenario_url(id)`; `max_retries`
    is how often the CLI retries a failed call (its default policy takes minutes). `job`
    is the job being rehearsed (its model and `rehearse:` settings shape some set-ups).
    """
    if tool not in _PREPARERS:
        return _hooked(tool, base_url.rstrip("/"), home, max_retries, job)
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / "tmp"
    tmp.mkdir(exist_ok=True)
    rehearsal = _PREPARERS[tool](base_url.rstrip("/"), home, max_retries)
    # the CLIs litter /tmp (sockets, probes, crash reports); keep that inside the home too
    isolation = {"HOME": str(home), "TMPDIR": str(tmp)}
    return Rehearsal({**isolation, **rehearsal.env}, rehearsal.extra_args)


def _hooked(
    tool: str, base_url: str, home: Path, max_retries: int, job: JobSpec | None
) -> Rehearsal:
    from corral.tools import all_tools

    adapter = all_tools().get(tool)
    if adapter is None or not adapter.rehearsable:
        known = ", ".join(rehearsable())
        raise ValueError(f"no rehearsal set-up for {tool!r}; known: {known}")
    home.mkdir(parents=True, exist_ok=True)
    spec = job or JobSpec(tool=tool, prompt="rehearse")
    done = adapter.rehearse(spec, base_url=base_url, home=home, max_retries=max_retries)
    return Rehearsal(dict(done.env), list(done.extra_args), dict(done.spec))


def _claude(base_url: str, home: Path, max_retries: int) -> Rehearsal:
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


def _codex(base_url: str, home: Path, max_retries: int) -> Rehearsal:
    codex_home = home / ".codex"
    codex_home.mkdir(exist_ok=True)
    table = f"model_providers.{CODEX_PROVIDER}"
    settings = {
        "model_provider": CODEX_PROVIDER,
        f"{table}.name": "corral simulated provider",
        # Codex posts to {base_url}/responses, so the API version goes into the base URL
        f"{table}.base_url": f"{base_url}/v1",
        f"{table}.env_key": CODEX_KEY_VAR,
        f"{table}.wire_api": "responses",
        f"{table}.request_max_retries": max_retries,
        f"{table}.stream_max_retries": max_retries,
    }
    args: list[str] = []
    for key, value in settings.items():
        args += ["-c", f"{key}={json.dumps(value)}"]
    return Rehearsal(
        env={"CODEX_HOME": str(codex_home), CODEX_KEY_VAR: DUMMY_KEY},
        extra_args=[*args, "--skip-git-repo-check"],
    )


def _gemini(base_url: str, home: Path, max_retries: int) -> Rehearsal:
    settings: JsonObject = {
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
    folder.mkdir(exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return Rehearsal(
        env={
            "GOOGLE_GEMINI_BASE_URL": base_url,
            "GEMINI_API_KEY": DUMMY_KEY,
            # a fresh home trusts no folder, and headless mode exits 55 in an untrusted one
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
        }
    )


_PREPARERS: dict[str, Callable[[str, Path, int], Rehearsal]] = {
    "claude": _claude,
    "codex": _codex,
    "gemini": _gemini,
}
