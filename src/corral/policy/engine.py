"""Rego policies, compiled and evaluated by regorus (the `policy` extra).

A policy set is every `*.rego` file under the paths given (recursively, sorted; OPA
test files `*_test.rego` and hidden folders are skipped) plus the bundle data files
`data.json` / `data.yaml` / `data.yml`, each merged into `data` at its folder's path
as OPA bundles do (`org/data.yaml` becomes `data.org`).

Rules are found by name, as conftest finds them: in every package, a rule named
`deny`, `violation` (or `deny_*`, `violation_*`) denies and `warn` (`warn_*`) warns.
Each rule may yield strings (the message) or objects with `msg` and, when the denial
concerns one job, `job`; other keys are kept as details.

Files are read as Rego v1 (OPA 1.x: `if` and `contains` required); a file that only
parses as Rego v0 (`deny[msg] { ... }`) is read as v0, so existing bundles load
unchanged. Numbers are 64-bit floats in regorus: compare money with `>`/`<`, not `==`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.errors import PolicyError

INSTALL_HINT = "install it with: pip install 'corral[policy]'"
DATA_FILES = frozenset({"data.json", "data.yaml", "data.yml"})
_RULE = re.compile(r"^(deny|violation|warn)(_[A-Za-z0-9_]+)?$")
_V1_IMPORT = re.compile(r"^\s*import\s+rego\.v1\b", re.MULTILINE)
_LOCATION = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")


def regorus_module() -> Any:
    """The regorus module, or PolicyError naming the extra to install."""
    try:
        import regorus
    except ImportError:
        raise PolicyError(
            "policies need the Rego interpreter, which is not installed", hint=INSTALL_HINT
        ) from None
    return regorus


@dataclass(frozen=True)
class Finding:
    """One denial or warning produced by a rule."""

    rule: str  # package and rule name: corral.no_shell.deny
    message: str
    job: str | None = None
    file: str | None = None
    line: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "job": self.job,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Outcome:
    """What a policy set said about one input document."""

    denials: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    prints: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyFiles:
    """The files a set of policy paths holds: Rego sources and data documents."""

    rego: tuple[Path, ...]
    data: tuple[tuple[Path, tuple[str, ...]], ...]  # file, the data path it is merged at

    @classmethod
    def find(cls, paths: Sequence[Path]) -> PolicyFiles:
        rego: list[Path] = []
        data: list[tuple[Path, tuple[str, ...]]] = []
        for root in paths:
            if root.is_file():
                if root.suffix in (".json", ".yaml", ".yml"):
                    data.append((root, ()))
                else:
                    rego.append(root)
                continue
            found = sorted(_walk(root))
            policies = [p for p in found if p.suffix == ".rego" and not p.stem.endswith("_test")]
            if not policies:
                raise PolicyError(
                    f"{root}: no Rego policy (*.rego) in this folder",
                    hint="point --policy, CORRAL_POLICY or `policy:` at a folder of .rego files",
                )
            rego.extend(policies)
            for file in found:
                if file.name in DATA_FILES:
                    data.append((file, file.parent.relative_to(root).parts))
        return cls(tuple(dict.fromkeys(rego)), tuple(data))


def _walk(root: Path, seen: frozenset[Path] = frozenset()) -> Iterable[Path]:
    here = root.resolve()
    if here in seen:
        return  # a symbolic link back up the tree
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry, seen | {here})
        elif entry.is_file():
            yield entry


class PolicySet:
    """Compiled policies and their data, ready to evaluate input documents."""

    def __init__(self, files: PolicyFiles) -> None:
        regorus = regorus_module()
        self.files = files
        self._engine = regorus.Engine()
        self._engine.set_gather_prints(True)
        for path in files.rego:
            self._add_policy(path)
        data: dict[str, Any] = {}
        for path, at in files.data:
            _merge(data, _nest(at, _read_data(path)), str(path))
        if data:
            self._engine.add_data(data)
        self._packages = sorted(self._engine.get_packages())
        self._rules = self._rule_locations()

    @classmethod
    def load(cls, paths: Sequence[Path]) -> PolicySet:
        """Read every policy under `paths`; PolicyError (file:line:col) if one is invalid."""
        return cls(PolicyFiles.find(paths))

    def _add_policy(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise PolicyError(f"{path}: cannot read: {error}") from None
        name = str(path)
        try:
            self._engine.add_policy(name, text)
            return
        except RuntimeError as v1_error:
            v1 = _engine_error(str(v1_error))
        if _V1_IMPORT.search(text):
            raise v1.as_policy_error(prefix="invalid Rego")
        self._engine.set_rego_v0(True)  # an OPA 0.x bundle: `deny[msg] { ... }`
        try:
            self._engine.add_policy(name, text)
            return
        except RuntimeError as v0_error:
            v0 = _engine_error(str(v0_error))
        finally:
            self._engine.set_rego_v0(False)
        # report the reading that got further into the file: that is the likelier intent
        further = v0 if (v0.line, v0.column) > (v1.line, v1.column) else v1
        raise further.as_policy_error(prefix="invalid Rego")

    def _rule_locations(self) -> dict[tuple[str, str], tuple[str | None, int | None]]:
        """(package, rule) -> where it is written, read from regorus' syntax tree: file
        and line for a rule written once; the file alone (or nothing) for one written in
        several places, since a result does not say which definition produced it."""
        written: dict[tuple[str, str], list[tuple[str, int]]] = {}
        try:
            modules = json.loads(self._engine.get_ast_as_json())
            for module in modules:
                file = module["source"]["file"]
                package = _ref_name(module["ast"]["package"]["refr"])
                for rule in module["ast"]["rules"]:
                    kind, body = next(iter(rule.items()))
                    head = body if kind == "Default" else next(iter(body["head"].values()))
                    name = _ref_name(head["refr"]).split(".")[0]
                    written.setdefault((package, name), []).append(
                        (file, int(body["span"]["line"]))
                    )
        except (KeyError, TypeError, ValueError, StopIteration):  # pragma: no cover
            # locations are a convenience: a regorus whose tree differs still evaluates
            return {}
        found: dict[tuple[str, str], tuple[str | None, int | None]] = {}
        for key, places in written.items():
            files = {file for file, _ in places}
            if len(places) == 1:
                found[key] = places[0]
            else:
                found[key] = (files.pop() if len(files) == 1 else None, None)
        return found

    def evaluate(self, document: Mapping[str, Any]) -> Outcome:
        """Every denial and warning the policies produce for `document` (as `input`)."""
        # default=str: a YAML date or time in a matrix is text to a policy, not an error
        self._engine.set_input_json(json.dumps(document, default=str))
        denials: list[Finding] = []
        warnings: list[Finding] = []
        for query in self._packages:
            package = query.removeprefix("data.")
            try:
                result = json.loads(self._engine.eval_query_as_json(query))
            except RuntimeError as error:
                raise _engine_error(str(error)).as_policy_error(
                    prefix=f"policy {package} failed"
                ) from None
            for value in _values(result):
                if not isinstance(value, dict):
                    continue
                for name in sorted(value):
                    match = _RULE.match(name)
                    if match is None:
                        continue
                    where = self._rules.get((package, name), (None, None))
                    findings = [
                        _finding(f"{package}.{name}", item, where) for item in _items(value[name])
                    ]
                    (warnings if match.group(1) == "warn" else denials).extend(findings)
        prints = tuple(self._engine.take_prints())
        return Outcome(tuple(denials), tuple(warnings), prints)


@dataclass(frozen=True)
class _EngineError:
    message: str
    file: str | None = None
    line: int = 0
    column: int = 0
    source: str | None = None

    def as_policy_error(self, *, prefix: str) -> PolicyError:
        where = f"{self.file}:{self.line}:{self.column}: " if self.file else ""
        context = [f"    {self.source.strip()}"] if self.source and self.source.strip() else []
        return PolicyError(f"{where}{prefix}: {self.message}", context=context)


def _engine_error(text: str) -> _EngineError:
    """Read regorus' error text (a `--> file:line:col` pointer, the source line, the
    message) into its parts, without the Rust stack trace it may append."""
    text = text.split("Stack backtrace:", maxsplit=1)[0].strip()
    lines = text.splitlines()
    message = next(
        (line.removeprefix("error:").strip() for line in lines if line.startswith("error:")),
        lines[-1].strip() if lines else "unknown error",
    )
    located = _LOCATION.search(text)
    if located is None:
        return _EngineError(message)
    line = int(located["line"])
    source = next(
        (row.split("|", 1)[1] for row in lines if row.strip().startswith(f"{line} |")), None
    )
    return _EngineError(message, located["file"], line, int(located["col"]), source)


def _ref_name(ref: Mapping[str, Any]) -> str:
    kind, body = next(iter(ref.items()))
    if kind == "Var":
        return str(body["value"])
    if kind == "RefDot":
        return f"{_ref_name(body['refr'])}.{body['field'][1]}"
    return _ref_name(body["refr"])  # RefBrack: the part before the brackets


def _values(result: Mapping[str, Any]) -> list[Any]:
    return [e["value"] for r in result.get("result", []) for e in r.get("expressions", [])]


def _items(value: Any) -> list[Any]:
    """The denials a rule's value stands for: each member of a set, or the value itself."""
    if value is True:
        return [None]
    if value is False or value is None or value in ([], ""):
        return []
    if isinstance(value, list):
        return value
    return [value]


def _finding(rule: str, item: Any, where: tuple[str | None, int | None]) -> Finding:
    file, line = where
    if item is None:
        return Finding(rule, rule.rsplit(".", 1)[-1], file=file, line=line)
    if isinstance(item, str):
        return Finding(rule, item, file=file, line=line)
    if isinstance(item, dict) and ("msg" in item or "message" in item):
        details = {k: v for k, v in item.items() if k not in ("msg", "message", "job")}
        message = item.get("msg", item.get("message"))
        job = item.get("job")
        return Finding(
            rule,
            message if isinstance(message, str) else json.dumps(message),
            job=job if isinstance(job, str) else None,
            file=file,
            line=line,
            details=details,
        )
    return Finding(rule, json.dumps(item, sort_keys=True), file=file, line=line)


def _read_data(path: Path) -> Any:
    import yaml  # only with a policy data file: every run imports this module

    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise PolicyError(f"{path}: cannot read policy data: {error}") from None


def _nest(path: tuple[str, ...], value: Any) -> Any:
    for part in reversed(path):
        value = {part: value}
    return value


def _merge(into: dict[str, Any], value: Any, source: str, at: str = "data") -> None:
    if not isinstance(value, dict):
        raise PolicyError(f"{source}: policy data must be a mapping at {at}")
    for key, item in value.items():
        if key in into and isinstance(into[key], dict) and isinstance(item, dict):
            _merge(into[key], item, source, f"{at}.{key}")
        elif key in into:
            raise PolicyError(f"{source}: {at}.{key} is already set by another data file")
        else:
            into[key] = item


__all__ = ["Finding", "Outcome", "PolicyFiles", "PolicySet", "regorus_module"]
