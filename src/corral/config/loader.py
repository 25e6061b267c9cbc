"""Load a flow file (YAML, JSON or TOML) into a FlowSpec, reporting every mistake at once.

Each problem is `flow.yaml:LINE:COL: jobs.lint.timeout: message`, with "did you mean"
for misspelt keys. The reference tool's JSON config (`{"instances": [...]}`) is
recognised and converted.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from corral.config.fields import JOB_FIELDS, NOT_DEFAULTABLE, job_name_problem
from corral.config.loaded import LoadedFlow, dotted, position
from corral.config.schema import (
    BudgetSpec,
    FlowSpec,
    JobSpec,
    OutputSpec,
    RehearseSpec,
    RehearseUsage,
)
from corral.errors import FlowError, Problem

if TYPE_CHECKING:
    # the YAML and TOML readers are imported by _parse: `corral exec` builds its flow
    # in memory and never loads them
    from corral.config.locate import Locator, Path_


@functools.cache
def _flow_loader() -> Any:
    """YAML's loader (the C one where there is one), refusing a key written twice: YAML
    keeps the last one, and a whole job (or a `run:`) would vanish without a word. Built on
    first use: `corral --help` and `exec` do not import YAML."""
    import yaml

    from corral.config.locate import SafeLoader

    base: Any = SafeLoader

    class FlowLoader(base):  # type: ignore[misc]  # a base chosen at import time
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[str, yaml.Node] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                first = seen.setdefault(key_node.value, key_node)
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} (first at line "
                        f"{first.start_mark.line + 1}): YAML would keep only this one, so "
                        "rename or remove one of them",
                        key_node.start_mark,
                    )
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

    return FlowLoader


def _parse(text: str, suffix: str, source: str) -> tuple[Any, Locator]:
    from corral.config.locate import make_locator

    if suffix in (".yaml", ".yml", ".json"):
        import yaml

        from corral.config.locate import yaml_positions, yaml_scalars

        try:
            data = json.loads(text) if suffix == ".json" else _load_yaml(text)
        except json.JSONDecodeError as error:
            raise FlowError(
                [Problem(source, error.lineno, error.colno, "", f"invalid JSON: {error.msg}")]
            ) from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            what = getattr(error, "problem", None) or str(error)
            what += _tag_hint(text, mark.line if mark else None)
            if what.startswith("mapping values are not allowed"):
                what += " (a value with `: ` in it must be quoted: run: 'echo \"a: b\"')"
            raise FlowError([Problem(source, line, column, "", f"invalid YAML: {what}")]) from None
        return data, make_locator(yaml_positions, text, yaml_scalars)
    if suffix == ".toml":
        import tomllib

        from corral.config.locate import toml_positions

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            # tomllib puts the place at the end of its message: FILE:LINE:COL like the rest
            message, line, column = str(error), None, None
            if placed := _TOML_PLACE.search(message):
                message = message[: placed.start()]
                line, column = int(placed.group(1)), int(placed.group(2))
            problem = Problem(source, line, column, "", f"invalid TOML: {message}")
            raise FlowError([problem]) from None
        return data, make_locator(toml_positions, text)
    raise FlowError(
        [
            Problem(
                source,
                None,
                None,
                "",
                f"unknown flow file type {suffix!r}: use .yaml, .yml, .json or .toml",
            )
        ]
    )


def _load_yaml(text: str) -> Any:
    """The fast path first (`corral.config.fastyaml`); PyYAML's own constructor for what
    it does not take, and for every error, which it then reports with its position."""
    import yaml

    from corral.config.fastyaml import UNUSUAL, BadScalar, fast_load

    bad: BadScalar | None = None
    try:
        data = fast_load(text, _flow_loader())
    except BadScalar as error:
        bad, data = error, UNUSUAL
    except yaml.YAMLError:
        data = UNUSUAL
    if data is UNUSUAL:
        try:
            data = yaml.load(text, Loader=_flow_loader())
        except ValueError:  # PyYAML's constructor says neither what nor where
            if bad is None:
                raise
            raise bad from None
    return data


_TOML_PLACE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")

_TAG = re.compile(r"(?:^|[:,{\[-])\s*(![^\s,}\]]*)")


def _tag_hint(text: str, line: int | None) -> str:
    """A value that starts with `!` is a YAML tag: say so (`if: !cancelled()`)."""
    if line is None:
        return ""
    lines = text.splitlines()
    found = _TAG.search(lines[line]) if line < len(lines) else None
    if found is None:
        return ""
    return (
        f" (`{found.group(1)}` starts with `!`, which YAML reads as a tag: quote the value "
        "or wrap the expression, as on GitHub: if: ${{ !cancelled() }})"
    )


def load_flow(path: str | Path) -> LoadedFlow:
    """Read, parse and validate a flow file. Raises FlowError listing every problem."""
    source = str(path)
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise FlowError(
            [Problem(source, None, None, "", "no such file (check the path)")]
        ) from None
    except OSError as error:
        raise FlowError([Problem(source, None, None, "", f"cannot read: {error}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FlowError([_not_text(source, raw, error.start)]) from None
    return load_text(text, file, source)


def _not_text(source: str, raw: bytes, start: int) -> Problem:
    """A file that is not UTF-8 text, located at its first bad byte."""
    line = raw.count(b"\n", 0, start) + 1
    before = raw[raw.rfind(b"\n", 0, start) + 1 : start]  # the line up to it, in characters
    column = len(before.decode("utf-8", "replace")) + 1
    return Problem(
        source,
        line,
        column,
        "",
        f"not UTF-8 text (byte 0x{raw[start]:02x}): a flow file is YAML, JSON or TOML "
        "written in UTF-8; is this the right file?",
    )


def load_text(text: str, file: Path, source: str) -> LoadedFlow:
    """Parse and validate flow text as if read from `file` (its suffix picks the format)."""
    data, locate = _parse(text, file.suffix.lower(), source)
    legacy = False
    # the converter (and its imports) only for a document with zen's `instances`
    if isinstance(data, dict) and "instances" in data and _is_legacy(data):
        from corral.config.legacy import convert

        try:
            data = convert(data, source=source)
        except FlowError as error:
            located = [_relocate(p, locate) for p in error.problems]
            located.sort(key=lambda p: (p.line or 0, p.column or 0))
            raise FlowError(located) from None
        legacy = True
    spec = validate_document(data, source=source, locate=locate)
    return LoadedFlow(spec, file, source, text, locate, legacy)


def _is_legacy(data: dict[str, Any]) -> bool:
    from corral.config.legacy import is_legacy

    return is_legacy(data)


def validate_document(data: Any, *, source: str, locate: Locator) -> FlowSpec:
    """Validate a parsed flow document, merging `defaults` into each job first."""
    if not isinstance(data, dict):
        raise FlowError(
            [Problem(source, 1, 1, "", "a flow file must be a mapping with a `jobs:` key")]
        )
    problems: list[Problem] = []
    document = _merge_defaults(data, source, locate, problems)
    document = _check_jobs(document, source, locate, problems)
    try:
        spec = FlowSpec.model_validate(document)
    except ValidationError as error:
        problems.extend(_problems(error, document, data, source, locate))
        spec = None
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise FlowError(problems)
    assert spec is not None
    return spec


def _merge_defaults(
    data: dict[str, Any], source: str, locate: Locator, problems: list[Problem]
) -> dict[str, Any]:
    defaults = data.get("defaults") or {}
    jobs = data.get("jobs")
    if not isinstance(defaults, dict):
        problems.append(_problem(source, locate, ("defaults",), "must be a mapping of job fields"))
        return data
    for key in defaults:
        if key not in JOB_FIELDS:
            problems.append(
                _problem(
                    source, locate, ("defaults", key, "<key>"), _unknown(key, sorted(JOB_FIELDS))
                )
            )
        elif key in NOT_DEFAULTABLE:
            problems.append(
                _problem(
                    source,
                    locate,
                    ("defaults", key, "<key>"),
                    f"`{key}` only makes sense on a single job; move it there",
                )
            )
    if not defaults or not isinstance(jobs, dict):
        return data
    usable = {k: v for k, v in defaults.items() if k in JOB_FIELDS and k not in NOT_DEFAULTABLE}
    merged_jobs: dict[str, Any] = {}
    for name, job in jobs.items():
        if not isinstance(job, dict):
            merged_jobs[name] = job
            continue
        merged = copy.deepcopy(usable)
        for key, value in job.items():
            if key == "env" and isinstance(value, dict) and isinstance(merged.get("env"), dict):
                merged["env"] = {**merged["env"], **value}
            else:
                merged[key] = value
        merged_jobs[name] = merged
    return {**data, "jobs": merged_jobs}


def _check_jobs(
    document: dict[str, Any], source: str, locate: Locator, problems: list[Problem]
) -> dict[str, Any]:
    """Every bad job name at once, each at its place and told what is wrong with it; the
    jobs whose name is bad go no further."""
    jobs = document.get("jobs")
    if not isinstance(jobs, dict):
        return document
    good: dict[Any, Any] = {}
    for index, (name, job) in enumerate(jobs.items()):
        wrong = job_name_problem(name)
        if wrong is not None:
            if isinstance(name, str):
                problems.append(_problem(source, locate, ("jobs", name, "<key>"), wrong))
            else:  # YAML made it a number, a boolean or null: found by its place
                from corral.config.locate import KEY_AT

                shown = "null" if name is None else str(name).lower()
                where = ("jobs", KEY_AT, index)
                problems.append(_problem(source, locate, where, wrong, shown=("jobs", shown)))
            continue
        good[name] = job
    return {**document, "jobs": good} if len(good) != len(jobs) else document


# GitHub Actions keys a flow spells otherwise
_GITHUB_KEYS = {
    "strategy": "corral has no `strategy:`: give the job a `matrix:`, with `max_parallel` "
    "and `fail_fast` inside it",
    "continue-on-error": "write `continue_on_error`",
}


def _unknown(key: str, candidates: list[str]) -> str:
    if key in _GITHUB_KEYS and "matrix" in candidates:
        return f"unknown key '{key}'; {_GITHUB_KEYS[key]}"
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{key}'{hint}"


_MODEL_AT: Mapping[str, type[BaseModel]] = {
    "budget": BudgetSpec,
    "rehearse": RehearseSpec,
}
_NESTED_AT: Mapping[tuple[str, str], type[BaseModel]] = {("rehearse", "usage"): RehearseUsage}


def _fields_for(loc: Path_) -> list[str]:
    """The valid keys at the mapping that holds `loc[-1]`, for did-you-mean."""
    parent = loc[:-1]
    model: type[BaseModel] = FlowSpec
    if len(parent) >= 2 and parent[0] == "jobs":
        model = JobSpec
        if len(parent) >= 3:
            model = _MODEL_AT.get(str(parent[2]), JobSpec)
            if parent[2] == "outputs":
                model = OutputSpec
            if len(parent) >= 4:
                model = _NESTED_AT.get((str(parent[2]), str(parent[3])), model)
    elif parent and parent[0] == "budget":
        model = BudgetSpec
    names = {info.alias or name for name, info in model.model_fields.items()}
    return sorted(names)


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if kind in ("dict_type", "model_type"):
        message = "must be a mapping"
    if kind == "too_short" and tuple(error["loc"]) == ("jobs",):
        message = "no jobs: add at least one job under `jobs:` (a name, then `run:` or `prompt:`)"
    if kind == "string_type" and isinstance(error.get("input"), bool):
        word = "true" if error["input"] else "false"
        message = f"got the boolean {word} (YAML reads true/false/yes/no/on/off so): quote it"
    return message


def _problems(
    error: ValidationError,
    document: dict[str, Any],
    original: dict[str, Any],
    source: str,
    locate: Locator,
) -> list[Problem]:
    problems = []
    seen: set[tuple[Path_, str]] = set()
    items = [(_strip_union(tuple(item["loc"])), item) for item in error.errors()]
    # a union (str | list) reports each member; the deepest error is the one that helps
    deeper = {loc[:-1] for loc, _ in items if len(loc) > 1}
    kinds: dict[Path_, list[str]] = {}
    for loc, entry in items:
        if entry["type"].endswith("_type") and loc not in deeper:
            kinds.setdefault(loc, []).append(str(entry["msg"]).removeprefix("Input should be "))
    for loc, raw in items:
        if loc in deeper and raw["type"].endswith("_type"):
            continue
        if raw["type"] == "too_short" and loc == ("jobs",) and original.get("jobs"):
            continue  # every job had a bad name, each reported already
        item: Mapping[str, Any] = raw
        if len(kinds.get(loc, ())) > 1 and not isinstance(raw.get("input"), bool):
            item = {**raw, "msg": "Input should be " + " or ".join(dict.fromkeys(kinds[loc]))}
        if item["type"] == "extra_forbidden":
            message = _unknown(str(loc[-1]), _fields_for(loc))
            where: Path_ = (*loc, "<key>")
        else:
            message = _message(item)
            where = loc
        moved = _from_defaults(where, original, locate)
        shown = moved if moved is not where else loc
        if (shown, message) in seen:
            continue
        seen.add((shown, message))
        problems.append(_problem(source, locate, moved, message, shown=shown))
    return problems


def _relocate(problem: Problem, locate: Locator) -> Problem:
    """Give a problem found on the converted document the line and column of its path."""
    if problem.line is not None or not problem.path:
        return problem
    path: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", problem.path):
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    if problem.message.startswith("unknown key"):
        path.append("<key>")
    line, column = position(locate, tuple(path))
    return Problem(problem.file, line, column, problem.path, problem.message)


def _strip_union(loc: Path_) -> Path_:
    """Drop pydantic's union-member names (`str`, `list[str]`) from an error location."""
    return tuple(
        p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "list", "int")))
    )


def _from_defaults(path: Path_, original: dict[str, Any], locate: Locator) -> Path_:
    """A bad value inherited from `defaults` is reported where it was written."""
    if len(path) >= 3 and path[0] == "jobs" and locate(path) is None:
        job = (original.get("jobs") or {}).get(path[1])
        if (
            isinstance(job, dict)
            and path[2] not in job
            and path[2] in (original.get("defaults") or {})
        ):
            return ("defaults", *path[2:])
    return path


def _problem(
    source: str, locate: Locator, path: Path_, message: str, shown: Path_ | None = None
) -> Problem:
    line, column = position(locate, path)
    return Problem(source, line, column, dotted(shown if shown is not None else path), message)
