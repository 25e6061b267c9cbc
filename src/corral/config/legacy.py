"""Import of the reference tool's JSON config (zen, PyPI `netra-zen`) as a corral flow.

zen reads `{"instances": [...], "budget": {...}}` and starts one `claude -p` per
instance, all at once. `convert` maps that onto a flow document that `FlowSpec`
validates, keeping zen's behaviour where corral can express it and saying so (in
`notes`) where it cannot. The mapping, field by field, is in docs/tools.md.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from corral.errors import FlowError, Problem

INSTANCE_KEYS = (
    "command",
    "prompt",
    "name",
    "description",
    "allowed_tools",
    "permission_mode",
    "output_format",
    "session_id",
    "clear_history",
    "compact_history",
    "pre_commands",
    "max_tokens_per_command",
)
BUDGET_KEYS = (
    "overall_budget",
    "overall_cost_budget",
    "budget_type",
    "enforcement_mode",
    "command_budgets",
    "command_cost_budgets",
    "disable_visuals",
)
TOP_KEYS = ("instances", "budget")
# zen's InstanceConfig default (it avoids approval prompts nobody can answer headless)
ZEN_PERMISSION_MODE = "bypassPermissions"
_ENFORCEMENT = {"warn": "warn", "block": "stop"}
_BUDGET_TYPES = ("tokens", "cost", "mixed")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def is_legacy(data: object) -> bool:
    """Whether a parsed document is a zen config rather than a corral flow."""
    return isinstance(data, dict) and "instances" in data and "jobs" not in data


def convert(data: dict[str, Any], *, source: str, notes: list[str] | None = None) -> dict[str, Any]:
    """A corral flow document for zen config `data` read from `source`.

    Raises FlowError with every problem at once. Fields that corral accepts but cannot
    honour exactly are described in `notes`, when a list is given.
    """
    converter = _Converter(source)
    flow = converter.convert(data)
    if converter.problems:
        raise FlowError(converter.problems)
    if notes is not None:
        notes.extend(converter.notes)
    return flow


@dataclass
class _Instance:
    index: int
    name: str  # zen's identity for the instance, which must be unique
    job: str
    text: str  # command, or prompt when there is no command: zen's budget key
    spec: dict[str, Any]
    max_tokens: int | None


@dataclass
class _Converter:
    source: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.source, None, None, path, message))

    def unknown_keys(self, data: dict[str, Any], known: tuple[str, ...], prefix: str) -> None:
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                self.problem(f"{prefix}{key}", f"unknown key '{key}'{hint}")

    def convert(self, data: dict[str, Any]) -> dict[str, Any]:
        self.unknown_keys(data, TOP_KEYS, "")
        raw = data.get("instances")
        if not isinstance(raw, list) or not raw:
            self.problem("instances", "must be a non-empty list of instances")
            raw = []
        instances = [i for n, item in enumerate(raw) if (i := self.instance(n, item)) is not None]
        self.check_duplicates(raw, instances)
        flow: dict[str, Any] = {"version": 1}
        if instances:
            # zen starts every instance at once; corral's default would cap at the CPU count
            flow["concurrency"] = len(instances)
        budget = data.get("budget")
        if budget is not None:
            self.budget(budget, instances, flow)
        flow["jobs"] = {i.job: i.spec for i in instances}
        return flow

    # instances

    def instance(self, n: int, item: Any) -> _Instance | None:
        path = f"instances[{n}]"
        if not isinstance(item, dict):
            self.problem(path, "must be a mapping with `command` or `prompt`")
            return None
        self.unknown_keys(item, INSTANCE_KEYS, f"{path}.")
        command = self.string(item, "command", path)
        prompt = self.string(item, "prompt", path)
        text = command or prompt
        if not text:
            self.problem(path, "give `command` (a slash command) or `prompt`")
            return None
        if command and prompt:
            self.notes.append(f"{path}: both command and prompt given; command wins, as in zen")
        parts = ["/clear"] if self.flag(item, "clear_history", path) else []
        parts += ["/compact"] if self.flag(item, "compact_history", path) else []
        parts += self.strings(item, "pre_commands", path)
        if parts:
            # zen sends them and the command as one prompt, joined by '; '
            self.notes.append(f"{path}: pre_commands go ahead of the command in the same prompt")
        spec: dict[str, Any] = {"tool": "claude", "prompt": "; ".join([*parts, text])}
        mode = self.string(item, "permission_mode", path)
        spec["permission_mode"] = mode or ZEN_PERMISSION_MODE
        tools = self.strings(item, "allowed_tools", path)
        if tools:
            spec["allowed_tools"] = tools
        self.session(item, path, spec)
        self.accepted(item, path)
        max_tokens = self.count(
            item.get("max_tokens_per_command"), f"{path}.max_tokens_per_command"
        )
        given = self.string(item, "name", path)
        # an unnamed slash command makes a job named after the command, not its arguments
        job = given or (text.split()[0] if text.startswith("/") else _zen_default_name(text))
        return _Instance(n, given or _zen_default_name(text), job, text, spec, max_tokens)

    def session(self, item: dict[str, Any], path: str, spec: dict[str, Any]) -> None:
        session_id = self.string(item, "session_id", path)
        if not session_id:
            return
        # zen passes `--session-id`: it names a new Claude session, it does not resume one
        try:
            uuid.UUID(session_id)
        except ValueError:
            self.notes.append(
                f"{path}.session_id: '{session_id}' is not a UUID, which Claude Code requires"
                " for --session-id; dropped"
            )
            return
        spec["extra_args"] = ["--session-id", session_id]

    def accepted(self, item: dict[str, Any], path: str) -> None:
        self.string(item, "description", path)
        fmt = self.string(item, "output_format", path)
        if fmt is not None and fmt not in ("stream-json", "json"):
            self.problem(
                f"{path}.output_format",
                f"unknown format '{fmt}': json or stream-json",
            )
        elif fmt == "json":
            self.notes.append(f"{path}.output_format: 'json' ignored; corral reads stream-json")

    def check_duplicates(self, raw: list[Any], instances: list[_Instance]) -> None:
        first: dict[str, _Instance] = {}
        for inst in instances:
            seen = first.setdefault(inst.name, inst)
            if seen is inst:
                continue
            given = isinstance(raw[inst.index], dict) and "name" in raw[inst.index]
            how = "" if given else " (derived from the command; give each instance a `name`)"
            self.problem(
                f"instances[{inst.index}].name",
                f"duplicate instance name '{inst.name}'{how} (also instances[{seen.index}]);"
                " names must be unique",
            )
        taken: set[str] = set()
        for inst in instances:
            job = _job_name(inst.job, inst.index, taken)
            if job != inst.name:
                self.notes.append(f"instances[{inst.index}]: '{inst.name}' becomes job '{job}'")
            taken.add(job)
            inst.job = job

    # budget

    def budget(self, budget: Any, instances: list[_Instance], flow: dict[str, Any]) -> None:
        if not isinstance(budget, dict):
            self.problem("budget", "must be a mapping")
            return
        self.unknown_keys(budget, BUDGET_KEYS, "budget.")
        mode = budget.get("enforcement_mode", "warn")
        on_exceed = _ENFORCEMENT.get(mode) if isinstance(mode, str) else None
        if on_exceed is None:
            self.problem("budget.enforcement_mode", f"must be 'warn' or 'block', got {mode!r}")
            on_exceed = "warn"
        kind = budget.get("budget_type", "tokens")
        if kind not in _BUDGET_TYPES:
            self.problem(
                "budget.budget_type", f"must be one of {', '.join(_BUDGET_TYPES)}, got {kind!r}"
            )
        if not isinstance(budget.get("disable_visuals", False), bool):
            self.problem("budget.disable_visuals", "must be true or false")
        tokens = self.count(budget.get("overall_budget"), "budget.overall_budget")
        usd = self.money(budget.get("overall_cost_budget"), "budget.overall_cost_budget")
        if usd is not None and tokens is not None:
            # zen builds its budget manager from the cost budget alone when both are set
            self.notes.append("budget.overall_budget: ignored, as in zen: overall_cost_budget wins")
            tokens = None
        overall = _limits(tokens, usd, on_exceed)
        if overall:
            flow["budget"] = overall
        token_limits = self.per_command(budget, "command_budgets", self.count)
        usd_limits = self.per_command(budget, "command_cost_budgets", self.money)
        self.job_budgets(instances, token_limits, usd_limits, on_exceed)

    def per_command(
        self, budget: dict[str, Any], key: str, read: Callable[[Any, str], Any]
    ) -> dict[str, Any]:
        raw = budget.get(key)
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(f"budget.{key}", "must map commands such as '/review' to limits")
            return {}
        limits = {str(k): read(v, f"budget.{key}.{k}") for k, v in raw.items()}
        return {k: v for k, v in limits.items() if v is not None}

    def job_budgets(
        self,
        instances: list[_Instance],
        token_limits: dict[str, int],
        usd_limits: dict[str, Decimal],
        on_exceed: str,
    ) -> None:
        used: dict[str, int] = {}
        for inst in instances:
            key = _budget_key(inst.text, token_limits.keys() | usd_limits.keys())
            tokens = _smaller(inst.max_tokens, token_limits.get(key))
            usd = usd_limits.get(key)
            if key in token_limits or key in usd_limits:
                used[key] = used.get(key, 0) + 1
            limits = _limits(tokens, usd, on_exceed)
            if limits:
                inst.spec["budget"] = limits
        for key in sorted(token_limits.keys() | usd_limits.keys()):
            count = used.get(key, 0)
            if count == 0:
                self.notes.append(f"budget: command budget '{key}' matches no instance; ignored")
            elif count > 1:
                self.notes.append(
                    f"budget: command budget '{key}' was shared by {count} instances in zen;"
                    " corral gives each of those jobs the whole limit"
                )
        if any(i.max_tokens is not None for i in instances):
            self.notes.append(
                "max_tokens_per_command: zen used it as a pre-start estimate; corral enforces it"
                " as the job's token budget"
            )

    # typed readers: each records a problem and returns None on a wrong type

    def string(self, item: dict[str, Any], key: str, path: str) -> str | None:
        value = item.get(key)
        if value is None or isinstance(value, str):
            return value
        self.problem(f"{path}.{key}", f"must be a string, got {type(value).__name__}")
        return None

    def strings(self, item: dict[str, Any], key: str, path: str) -> list[str]:
        value = item.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        self.problem(f"{path}.{key}", "must be a list of strings")
        return []

    def flag(self, item: dict[str, Any], key: str, path: str) -> bool:
        value = item.get(key, False)
        if isinstance(value, bool):
            return value
        self.problem(f"{path}.{key}", "must be true or false")
        return False

    def count(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole or value < 0:
            self.problem(path, f"must be a whole number of tokens, got {value!r}")
            return None
        return int(value)

    def money(self, value: Any, path: str) -> Decimal | None:
        if value is None:
            return None
        try:
            if isinstance(value, bool):
                raise InvalidOperation
            # through str: 0.1 as a float is not 0.1 dollars
            amount = Decimal(str(value))
        except (InvalidOperation, ValueError):
            amount = Decimal(-1)
        if not amount.is_finite() or amount < 0:
            self.problem(path, f"must be an amount of dollars such as 2.50, got {value!r}")
            return None
        return amount


def _zen_default_name(text: str) -> str:
    """zen's name for an unnamed instance: the slash command, or the prompt's start."""
    if text.startswith("/"):
        return text
    return text[:30] + "..." if len(text) > 30 else text


def _job_name(name: str, index: int, taken: set[str]) -> str:
    """A valid, unused corral job name for a zen instance name."""
    job = _NOT_NAME.sub("-", name).strip("-.")[:60].strip("-.") or f"instance-{index}"
    candidate, n = job, 2
    while candidate in taken:
        candidate, n = f"{job}-{n}", n + 1
    return candidate


def _budget_key(text: str, keys: set[str]) -> str:
    """zen's key for a command budget: the slash command's first word if it has a
    budget, else the whole command (or prompt) text."""
    if text.strip().startswith("/"):
        base = text.split(maxsplit=1)[0]
        if base in keys:
            return base
    return text


def _smaller(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


def _limits(tokens: int | None, usd: Decimal | None, on_exceed: str) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if tokens is not None:
        limits["tokens"] = tokens
    if usd is not None:
        limits["usd"] = str(usd)
    if limits:
        limits["on_exceed"] = on_exceed
    return limits
