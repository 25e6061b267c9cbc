"""Policy before execution: which policies apply to a flow, their verdict, and the gate.

Policies come from three places and all of them apply: the flow's `policy:` (paths
relative to the flow file), the paths given by whoever starts the run (`--policy` on
the command line, the server's configuration) and `CORRAL_POLICY` (paths separated by
`:`). A flow cannot switch off a policy its environment imposes.

`evaluate` gives the verdict; refusing a run (and recording the refusal) is the use
case's business: `corral.app.policy.admit`, which every way of starting a run goes
through before anything starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.config.loaded import LoadedFlow
from corral.errors import FlowError, PolicyError
from corral.plan import Plan

if TYPE_CHECKING:
    from corral.policy.engine import Finding

ENV_VAR = "CORRAL_POLICY"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Verdict:
    """The outcome of the policies for one flow: allowed unless something denied it."""

    flow: str  # the flow file as the user named it
    files: tuple[str, ...]  # the policy files evaluated
    denials: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    where: Mapping[str, str]  # job -> "flow.yaml:LINE:COL" of the job in the flow file
    prints: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.denials

    def location(self, finding: Finding) -> str:
        if finding.job is None:
            return self.flow
        return self.where.get(finding.job, self.flow)

    def describe(self, finding: Finding, *, warning: bool = False) -> str:
        """One line: where in the flow, the job, the message, the rule and its file."""
        origin = "warning from" if warning else "denied by"
        rule = finding.rule
        if finding.file is not None:
            rule += f", {finding.file}" + (f":{finding.line}" if finding.line else "")
        job = f"job '{finding.job}': " if finding.job is not None else ""
        return f"{self.location(finding)}: {job}{finding.message} ({origin} {rule})"

    def denial_lines(self) -> list[str]:
        return [self.describe(f) for f in self.denials]

    def warning_lines(self) -> list[str]:
        return [self.describe(f, warning=True) for f in self.warnings]

    def summary(self) -> str:
        files = f"{len(self.files)} policy file{'s' if len(self.files) != 1 else ''}"
        if self.allowed:
            return f"{self.flow}: allowed by {files}"
        count = len(self.denials)
        return f"{self.flow}: {count} denial{'s' if count != 1 else ''} from {files}"

    def to_json(self) -> dict[str, Any]:
        def entry(finding: Finding) -> dict[str, Any]:
            return {**finding.to_json(), "location": self.location(finding)}

        return {
            "schema_version": SCHEMA_VERSION,
            "flow": self.flow,
            "allowed": self.allowed,
            "policies": list(self.files),
            "denials": [entry(f) for f in self.denials],
            "warnings": [entry(f) for f in self.warnings],
        }


def policy_paths(
    loaded: LoadedFlow, given: Sequence[str | Path] = (), environ: Mapping[str, str] | None = None
) -> list[Path]:
    """Every policy path that applies to this flow, each once: the flow's, then the
    given ones, then CORRAL_POLICY's. A path that does not exist is an error."""
    environ = os.environ if environ is None else environ
    paths: list[Path] = []
    base = loaded.path.resolve().parent
    missing = [
        loaded.problem(("policy", i), f"no such policy file or folder: {entry}")
        for i, entry in enumerate(loaded.spec.policy or ())
        if not (base / entry).exists()
    ]
    if missing:
        raise FlowError(missing)
    paths.extend(base / entry for entry in loaded.spec.policy or ())
    for entry in given:
        if not Path(entry).exists():
            raise PolicyError(f"no such policy file or folder: {entry}")
        paths.append(Path(entry))
    for entry in filter(None, environ.get(ENV_VAR, "").split(os.pathsep)):
        if not Path(entry).exists():
            raise PolicyError(
                f"{ENV_VAR} names {entry}, which does not exist",
                hint=f"fix or unset {ENV_VAR}",
            )
        paths.append(Path(entry))
    unique: dict[Path, Path] = {}
    for path in paths:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def evaluate(
    loaded: LoadedFlow,
    plan: Plan,
    *,
    policies: Sequence[str | Path] = (),
    environ: Mapping[str, str] | None = None,
) -> Verdict | None:
    """The verdict of every policy that applies to this flow; None when none applies."""
    paths = policy_paths(loaded, policies, environ)
    if not paths:
        return None
    # every run comes through here; the engine and the input document are loaded only
    # when a policy applies
    from corral.policy.document import flow_input
    from corral.policy.engine import PolicyFiles, PolicySet

    policy_set = PolicySet(PolicyFiles.find(paths))
    outcome = policy_set.evaluate(flow_input(loaded, plan))
    where: dict[str, str] = {}
    rank: dict[str, int] = {}
    for index, (name, job) in enumerate(plan.jobs.items()):
        problem = loaded.problem(("jobs", job.group, "<key>"), "")
        where[name] = where[job.group] = _place(problem.file, problem.line, problem.column)
        rank[name] = index
        rank.setdefault(job.group, index)

    def order(finding: Finding) -> tuple[int, str, str]:
        # the flow's own findings first, then the jobs' in flow order
        position = -1 if finding.job is None else rank.get(finding.job, len(rank))
        return (position, finding.rule, finding.message)

    return Verdict(
        flow=loaded.source,
        files=tuple(str(p) for p in policy_set.files.rego),
        denials=tuple(sorted(outcome.denials, key=order)),
        warnings=tuple(sorted(outcome.warnings, key=order)),
        where=where,
        prints=outcome.prints,
    )


def _place(file: str, line: int | None, column: int | None) -> str:
    if line is None:
        return file
    return f"{file}:{line}" + (f":{column}" if column is not None else "")


__all__ = ["ENV_VAR", "Verdict", "evaluate", "policy_paths"]
