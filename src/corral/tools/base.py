"""The adapter API every agent CLI plugs into, and the pieces the built-in adapters share.

An adapter turns a validated job (`corral.config.fields.JobFields`: a flow file's `JobSpec`,
or `corral exec`'s `PlainJob`) into an `Invocation` (argv, extra environment,
parser format). It does no I/O in `build`: finding the executable and reading its
version are separate calls, so the scheduler can plan without touching the disk. An
adapter whose CLI can talk to corral's simulated provider says how in `rehearse`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from corral.config.fields import JobFields
from corral.errors import ToolError

# JobSpec fields an agent adapter may accept; anything else on a job is the runner's business
AGENT_FIELDS: tuple[str, ...] = (
    "prompt",
    "model",
    "allowed_tools",
    "permission_mode",
    "max_turns",
    "resume",
    "extra_args",
    "home",
    "budget",
)

# system-wide places npm and installers put CLIs; a module constant so tests can empty it
SYSTEM_DIRS: tuple[str, ...] = ("/usr/local/bin",)
# per-user install places, relative to HOME
USER_DIRS: tuple[str, ...] = (".local/bin", ".npm-global/bin")

_VERSION = re.compile(r"\d+(?:\.\d+)+(?:[-+.][0-9A-Za-z.-]+)?")


@dataclass(frozen=True)
class Invocation:
    """How to start one job.

    `env` holds only what the adapter adds (HOME, CODEX_HOME ...); the runner merges it
    over the parent environment and the job's own `env`. `parser` names the output
    format of the line parser that reads the child's stdout (a `corral.parsers` entry
    point); None for plain text, which is not parsed.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    parser: str | None = None


@dataclass(frozen=True)
class Rehearsal:
    """What one CLI run needs to talk only to the simulated provider (`corral rehearse`).

    `env` is laid over the job's environment (HOME, base URL, dummy key ...); `extra_args`
    are CLI flags, placed where the adapter puts the job's extra_args; `spec` holds JobSpec
    field updates (a model the scenario needs, a permission mode that offers the shell).
    """

    env: Mapping[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    spec: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionReport:
    """What a CLI's own files say about a finished session, read by its adapter.

    `model` is the model the CLI used when the flow named none, with `source` saying where
    that was read; `lines` are records for the job's parser (fed as the `session` stream),
    for CLIs that keep facts such as exact token counts out of their stdout.
    """

    source: str
    model: str | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verified:
    """The CLI version an adapter was proven against, with the real program, in CI."""

    version: str
    how: str = "real CLI against the simulated provider"


DUMMY_KEY = "dummy"  # the API key a rehearsed CLI sends; the simulated provider accepts any


def rehearsal_env(home: Path) -> dict[str, str]:
    """HOME, and TMPDIR inside it: the CLIs litter /tmp (sockets, probes, crash reports)."""
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "TMPDIR": str(tmp)}


def wants_shell(job: JobFields) -> bool:
    """Whether the rehearsed model will ask this job's CLI to run a shell command."""
    return job.rehearse is not None and job.rehearse.mode in ("tool", "big")


def write_json(path: Path, document: Mapping[str, object]) -> None:
    """A settings file for a rehearsed CLI, its folder created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def is_set(job: JobFields, name: str) -> bool:
    """Whether the job gives this agent field (an empty `extra_args` list counts as unset)."""
    value = getattr(job, name)
    if name == "extra_args":
        return bool(value)
    return value is not None


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def cli_cache_bin() -> Path:
    """Where scripts/install-clis.sh installs the agent CLIs (CORRAL_CLI_CACHE, else
    ~/.cache/corral/clis); read from corral's own environment, not a job's private HOME."""
    cache = os.environ.get("CORRAL_CLI_CACHE") or str(Path.home() / ".cache" / "corral" / "clis")
    return Path(cache) / "node_modules" / ".bin"


def npm_prefix_bin(environ: Mapping[str, str], home: Path | None) -> Path | None:
    """`<prefix>/bin` of a user-configured npm global prefix, without running npm (slow)."""
    prefix = environ.get("NPM_CONFIG_PREFIX") or environ.get("npm_config_prefix")
    if not prefix and home is not None:
        try:
            text = (home / ".npmrc").read_text(encoding="utf-8")
        except OSError:
            text = ""
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "prefix" and value.strip():
                prefix = value.strip()
    if not prefix:
        return None
    return Path(os.path.expanduser(prefix)) / "bin"


def prompt_args(flag: str | None, prompt: str, *, long_flag: str | None = None) -> tuple[str, ...]:
    """The prompt as argv words, safe when it starts with '-'.

    A prompt such as "- fix the bug" would be read as an option. An option that takes
    the prompt as its value switches to `--long=PROMPT`; a positional prompt gets `--`
    in front, so it must then be the last word of the argv.
    """
    if flag is None:
        return ("--", prompt) if prompt.startswith("-") else (prompt,)
    if prompt.startswith("-") and long_flag is not None:
        return (f"{long_flag}={prompt}",)
    return (flag, prompt)


class Tool(ABC):
    """An agent CLI adapter. Subclass it and register the class under the
    `corral.tools` entry-point group; the built-ins register exactly that way.
    """

    name: ClassVar[str]
    supports: ClassVar[frozenset[str]]
    executable_names: ClassVar[tuple[str, ...]]
    # parser format of the output corral asks for (shown by `corral tools`); None: plain
    parser: ClassVar[str | None]
    # extra install places relative to HOME, searched after the common ones
    home_dirs: ClassVar[tuple[str, ...]] = ()
    version_timeout: ClassVar[float] = 5.0
    needs_prompt: ClassVar[bool] = True
    # permission_mode value -> flags; Claude's names are listed as aliases so one flow
    # can switch `tool:` without rewriting permission_mode. Empty: the CLI has no modes.
    permission_modes: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # output formats a user may pick with `--output-format X` in extra_args -> parser
    output_formats: ClassVar[Mapping[str, str]] = {}
    # the version proven against the real CLI (scripts/install-clis.sh installs it), or
    # None for an adapter written from documentation alone
    verified: ClassVar[Verified | None] = None
    # why an unverified adapter could not be proven (shown by `corral tools` and the docs)
    unverified_reason: ClassVar[str] = "written from documentation"
    # whether `rehearse()` can point the CLI at the simulated provider
    rehearsable: ClassVar[bool] = False

    @property
    def env_var(self) -> str:
        """The variable that pins the executable: CORRAL_<TOOL>_BIN."""
        return f"CORRAL_{self.name.upper().replace('-', '_')}_BIN"

    def find_executable(self, environ: Mapping[str, str]) -> str | None:
        """Where the CLI is: CORRAL_<TOOL>_BIN, then PATH, then the usual install places.

        A CORRAL_<TOOL>_BIN that names nothing runnable is an error rather than a miss:
        the user asked for that file, and quietly using another would hide the mistake.
        """
        pinned = environ.get(self.env_var)
        if pinned:
            return self._pinned(pinned, environ)
        for directory in self._search_dirs(environ):
            for exe in self.executable_names:
                candidate = directory / exe
                if is_executable(candidate):
                    return str(candidate)
        return None

    def _pinned(self, pinned: str, environ: Mapping[str, str]) -> str:
        path = Path(os.path.expanduser(pinned))
        if os.sep not in pinned:
            # a bare name ("claude-beta") is looked up on PATH
            for directory in _path_dirs(environ):
                if is_executable(directory / pinned):
                    return str(directory / pinned)
        elif is_executable(path):
            return str(path)
        raise ToolError(
            f"{self.env_var}={pinned} is not an executable file",
            hint=f"fix or unset {self.env_var}",
        )

    def _search_dirs(self, environ: Mapping[str, str]) -> list[Path]:
        dirs = _path_dirs(environ)
        home_text = environ.get("HOME")
        home = Path(home_text) if home_text else None
        if home is not None:
            dirs += [home / d for d in USER_DIRS]
        dirs += [Path(d) for d in SYSTEM_DIRS]
        if home is not None:
            dirs += [home / d for d in self.home_dirs]
        npm_bin = npm_prefix_bin(environ, home)
        if npm_bin is not None:
            dirs.append(npm_bin)
        if environ.get("CORRAL_CLI_BIN_DIR"):
            dirs.append(Path(environ["CORRAL_CLI_BIN_DIR"]))
        dirs.append(cli_cache_bin())
        return _unique(dirs)

    def version(self, executable: str) -> str | None:
        """The CLI's version from `X --version`, or None if it cannot be read quickly."""
        return read_version([executable, "--version"], timeout=self.version_timeout)

    @abstractmethod
    def build(self, job: JobFields, *, executable: str, resume_session: str | None) -> Invocation:
        """The invocation for `job`. `job.home`, when set, is already a resolved path."""

    def rehearse(
        self, job: JobFields, *, base_url: str, home: Path, max_retries: int = 0
    ) -> Rehearsal:
        """Settings files in `home`, env vars, flags and spec updates that make this CLI
        talk only to the simulated provider at `base_url` (`max_retries`: the CLI's own)."""
        raise ToolError(f"{self.name} cannot be rehearsed", hint="run it for real")

    def session_report(
        self, env: Mapping[str, str], session_id: str | None, *, model: str | None
    ) -> SessionReport | None:
        """After the process ended: what the CLI's own files say about the session.

        `env` is the job's environment (HOME, CODEX_HOME ...), `model` the model the flow
        named (None: the CLI chose). The default reads nothing.
        """
        return None

    def validate(self, job: JobFields) -> list[str]:
        """One message per job field this tool cannot honour; empty when the job is fine."""
        problems = [
            f"{self.name} does not support {name}"
            for name in AGENT_FIELDS
            if name not in self.supports and is_set(job, name)
        ]
        if self.needs_prompt and not job.prompt:
            if job.run is not None:  # the user wrote a command, for an agent tool
                problems.append(
                    f"{self.name} needs a prompt, not `run:`: drop `tool: {self.name}` to "
                    "run the command, or write `prompt:` for the agent"
                )
            else:
                problems.append(f"{self.name} needs a prompt")
        mode = job.permission_mode
        if mode is not None and self.permission_modes and mode not in self.permission_modes:
            problems.append(
                f"{self.name} does not support permission_mode '{mode}'"
                f" (use one of: {', '.join(sorted(self.permission_modes))})"
            )
        chosen = output_format_in(job.extra_args)
        if chosen is not None and chosen not in self.output_formats:
            known = ", ".join(sorted(self.output_formats)) or "none"
            problems.append(
                f"{self.name} output format '{chosen}' cannot be parsed (corral reads: {known});"
                " leave --output-format out of extra_args"
            )
        return problems

    def chosen_format(self, job: JobFields) -> tuple[str | None, str | None]:
        """The output format the user forced in extra_args (or None) and the parser to use."""
        chosen = output_format_in(job.extra_args)
        if chosen is None:
            return None, self.parser
        try:
            return chosen, self.output_formats[chosen]
        except KeyError:
            raise ToolError(f"{self.name} output format '{chosen}' cannot be parsed") from None

    def permission_flags(self, job: JobFields) -> tuple[str, ...]:
        """The flags for `job.permission_mode` (validate() has rejected unknown modes)."""
        if job.permission_mode is None:
            return ()
        try:
            return self.permission_modes[job.permission_mode]
        except KeyError:
            raise ToolError(
                f"{self.name} does not support permission_mode '{job.permission_mode}'"
            ) from None

    def home_env(self, job: JobFields) -> dict[str, str]:
        """HOME for a private home directory; adapters add their CLI's own variables."""
        if job.home is None:
            return {}
        if job.home == "auto":
            # the runner owns directory creation and replaces 'auto' with a path
            raise ValueError("home 'auto' must be resolved to a path before build()")
        return {"HOME": job.home}


def rehearsal_for(
    tool: Tool, job: JobFields, *, base_url: str, home: Path, max_retries: int = 0
) -> Rehearsal:
    """`tool.rehearse(...)` in a private `home` that also holds the CLI's temporary files
    (`corral rehearse` and `corral provider serve` set every CLI up through this)."""
    if not tool.rehearsable:
        tool.rehearse(job, base_url=base_url, home=home, max_retries=max_retries)  # raises
    home.mkdir(parents=True, exist_ok=True)
    isolation = rehearsal_env(home)
    setup = tool.rehearse(job, base_url=base_url.rstrip("/"), home=home, max_retries=max_retries)
    return Rehearsal({**isolation, **setup.env}, tuple(setup.extra_args), setup.spec)


def _path_dirs(environ: Mapping[str, str]) -> list[Path]:
    return [Path(p) for p in environ.get("PATH", "").split(os.pathsep) if p]


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    out: list[Path] = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            out.append(path)
    return out


def read_version(argv: list[str], *, timeout: float) -> str | None:
    """Run `argv` with stdin closed; the first version-looking token of its output.

    The child gets its own session and the whole group is killed on timeout: Gemini
    re-executes itself, and killing only the first process would leak the second.
    """
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError:
        return None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None
    if proc.returncode != 0:
        return None
    text = (out or err).decode("utf-8", "replace")
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    match = _VERSION.search(line)
    if match:
        return match.group(0)
    return line or None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    from corral.execute.reaper import signal_group

    signal_group(proc.pid, signal.SIGKILL)
    proc.communicate()


def output_format_in(extra_args: Iterable[str], flag: str = "--output-format") -> str | None:
    """The value of `flag` when the user chose an output format in extra_args."""
    args = list(extra_args)
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None
