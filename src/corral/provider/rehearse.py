"""`corral rehearse`: one simulated provider for the whole run, one scenario per agent job,
and each CLI pointed at it through a private HOME (see `rehearsal.prepare`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from corral.config.schema import JobSpec, RehearseSpec
from corral.errors import ToolError
from corral.execute.prepare import Rehearse
from corral.plan import Plan, PlannedJob
from corral.provider.rehearsal import prepare, rehearsable
from corral.provider.scenarios import Scenario, Usage
from corral.provider.server import SimulatedProvider

# the model Codex gets when a rehearsal names none: its default uses "code mode" tools
CODEX_REHEARSAL_MODEL = "gpt-5.5"


def scenario_for(spec: RehearseSpec | None) -> Scenario:  # one return per mode
    """The simulated model's behaviour for one job (a plausible text answer by default)."""
    if spec is None:
        return Scenario.answer()
    usage = Usage(**spec.usage.model_dump()) if spec.usage else Usage()
    if spec.error is not None:
        return Scenario.error(spec.error)
    if spec.mode == "tool":
        commands = (spec.command,) if spec.command else ()
        return Scenario.tool(*commands, text=spec.text or "", usage=usage)
    if spec.mode == "slow":
        slow = Scenario.slow(spec.delay or 0.5, text=spec.text or Scenario().text)
        return replace(slow, usage=usage)  # Scenario.slow takes no usage
    if spec.mode == "hang":
        return Scenario.hang()
    if spec.mode == "big":
        return Scenario.big()
    if spec.mode == "failed":
        return Scenario.failed()
    return Scenario.answer(spec.text or Scenario().text, usage=usage)


@contextmanager
def rehearsal(plan: Plan) -> Iterator[Rehearse]:
    """Start the provider, register every agent job's scenario, and stop it afterwards."""
    provider = SimulatedProvider()
    ids: dict[str, str] = {}
    for index, job in enumerate(plan.jobs.values()):
        tool = job.tool
        if tool is None:
            continue  # plain commands run for real
        if tool not in rehearsable():
            raise ToolError(
                f"job '{job.name}': {tool} cannot be rehearsed (only {', '.join(rehearsable())})",
                hint="run it for real, or rehearse the other jobs with --only",
            )
        ids[job.name] = f"j{index}"
        provider.add_scenario(ids[job.name], scenario_for(job.spec.rehearse))

    def rehearse(job: PlannedJob, spec: JobSpec, home: Path) -> JobSpec:
        tool = job.adapter
        setup = prepare(tool, provider.scenario_url(ids[job.name]), home, job=spec)
        # the codex adapter always passes --skip-git-repo-check; codex refuses it twice
        extra = [arg for arg in setup.extra_args if arg != "--skip-git-repo-check"]
        update: dict[str, object] = {"home": str(home), "extra_args": [*extra, *spec.extra_args]}
        if tool == "codex" and spec.model is None:
            update["model"] = CODEX_REHEARSAL_MODEL
        wants_shell = spec.rehearse is not None and spec.rehearse.mode in ("tool", "big")
        if tool == "gemini" and wants_shell and spec.permission_mode is None:
            update["permission_mode"] = "yolo"  # headless Gemini offers its shell only then
        update.update(setup.spec)
        update["env"] = {**spec.env, **setup.env}
        return spec.model_copy(update=update)

    provider.start()
    try:
        yield rehearse
    finally:
        provider.stop()
