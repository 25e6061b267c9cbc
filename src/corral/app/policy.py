"""Policy before execution, as a use case: check a flow against the Rego policies that
apply to it, and refuse to run it when one denies.

    verdict = check_policies(loaded, plan, policies=["policies/"])   # `corral policy check`
    admitted = admit(loaded, plan, options, warn=warn)                # before any run starts

`start_run` calls `admit` itself before anything else (no executor, no log folder, no
history writer yet), so every way of running a flow (`run`, `exec`, `rehearse`, `resume`,
a server's run or rehearsal) is checked without asking for it. A caller that must do
something costly before `start_run` (the CLI starts a rehearsal's simulated provider)
calls `admit` first and passes the `Admitted` on, so the policies are read once.

Policies apply from the flow's `policy:`, from `RunOptions.policies` (the command line's
`--policy`, a server's configuration) and from CORRAL_POLICY; see `corral.policy`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from corral.app.header import new_run_id, run_header
from corral.app.location import open_history
from corral.config.loaded import LoadedFlow
from corral.errors import PolicyDenied, StoreError
from corral.events.types import RunRefused
from corral.models import RunStatus
from corral.plan import Plan
from corral.policy import Verdict, evaluate

if TYPE_CHECKING:
    from corral.app.run import RunOptions

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Admitted:
    """A flow the policies let run. `verdict` is None when no policy applies."""

    verdict: Verdict | None

    @property
    def warnings(self) -> list[str]:
        return [] if self.verdict is None else self.verdict.warning_lines()


def check_policies(
    loaded: LoadedFlow,
    plan: Plan,
    *,
    policies: Sequence[str | Path] = (),
    environ: Mapping[str, str] | None = None,
) -> Verdict | None:
    """The verdict of every policy that applies to this flow (None when none applies);
    records nothing. Raises PolicyError for a policy that cannot be read or evaluated."""
    return evaluate(loaded, plan, policies=policies, environ=environ)


def admit(
    loaded: LoadedFlow,
    plan: Plan,
    options: RunOptions,
    *,
    environ: Mapping[str, str] | None = None,
    warn: Warn | None = None,
) -> Admitted:
    """Check the flow before anything of a run starts.

    Allowed: returns an Admitted (its warnings and the policies' `print` output go to
    `warn`). Denied: records the refusal in the run's history (`options.store`, else the
    default one under `options.base_dir` or the flow's folder; not with `no_store`) and
    raises PolicyDenied, whose `run_id` names the recorded refusal and whose `document`
    is the verdict as JSON with `"status": "refused"`. A policy that cannot be read or
    evaluated raises PolicyError and records nothing. Nothing may run after either.
    """
    verdict = check_policies(loaded, plan, policies=options.policies, environ=environ)
    if verdict is not None and warn is not None:
        for text in verdict.prints:
            warn(f"policy print: {text}")
    if verdict is None or verdict.allowed:
        admitted = Admitted(verdict)
        if warn is not None:
            for line in admitted.warnings:
                warn(line)
        return admitted
    run_id = None
    if not options.no_store:
        try:
            run_id = record_refusal(loaded, verdict, options)
        except StoreError as error:
            if warn is not None:
                warn(f"refusal not recorded: {error.message}")
    summary = verdict.summary() + "; nothing was run"
    if run_id is not None:
        summary += f" (refusal recorded as run {run_id})"
    document = {**verdict.to_json(), "status": "refused", "run_id": run_id}
    raise PolicyDenied(verdict.denial_lines(), summary, document=document, run_id=run_id)


def record_refusal(loaded: LoadedFlow, verdict: Verdict, options: RunOptions) -> str:
    """Record a refused run: `run.started` with no jobs and no log folder, then
    `run.refused` with every denial. Returns its run id; StoreError if it cannot be
    written (the refusal stands all the same)."""
    now = time.time()
    run_id = options.run_id or new_run_id(now)
    header = run_header(loaded, run_id, Path(), options.args, None, ())
    started = dataclasses.replace(header, started_at=now, log_root="")
    denials = tuple({**f.to_json(), "location": verdict.location(f)} for f in verdict.denials)
    refused = RunRefused(
        run_id=run_id,
        status=RunStatus.REFUSED,
        ended_at=now,
        error="denied by policy: " + "; ".join(verdict.denial_lines()),
        denials=denials,
    )
    base_dir = options.base_dir or loaded.path.resolve().parent
    history = open_history(options.store, base_dir)
    assert history is not None  # opened, not merely looked for
    try:
        writer = history.writer()
        writer(started)
        writer(refused)
        writer.close()
    finally:
        history.close()
    return run_id


__all__ = ["Admitted", "admit", "check_policies", "record_refusal"]
