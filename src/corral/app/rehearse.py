"""`corral rehearse`: one simulated provider for the whole run, one scenario per agent job,
and each CLI pointed at it by its tool adapter's `rehearse` hook, in a private HOME."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from corral.config.fields import JobFields
from corral.config.schema import RehearseSpec
from corral.errors import ToolError
from corral.execute.prepare import Rehearse
from corral.plan import Plan, PlannedJob
from corral.provider.scenarios import Scenario, ScenarioUsage
from corral.provider.server import SimulatedProvider
from corral.tools import all_tools, get_tool, rehearsal_for


def scenario_for(spec: RehearseSpec | None) -> Scenario:  # one return per mode
    """The simulated model's behaviour for one job (a plausible text answer by default)."""
    if spec is None:
        return Scenario.answer()
    usage = ScenarioUsage(**spec.usage.model_dump()) if spec.usage else ScenarioUsage()
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


def rehearsable(plan: Plan) -> None:
    """ToolError naming the first agent job whose tool cannot be rehearsed."""
    for job in plan.jobs.values():
        if job.tool is None:
            continue  # plain commands run for real
        if not get_tool(job.tool).rehearsable:
            known = sorted(name for name, tool in all_tools().items() if tool.rehearsable)
            raise ToolError(
                f"job '{job.name}': {job.tool} cannot be rehearsed (only {', '.join(known)})",
                hint="run it for real, or rehearse the other jobs with --only",
            )


@contextmanager
def rehearsal(plan: Plan) -> Iterator[Rehearse]:
    """Start the provider, register every agent job's scenario, and stop it afterwards.

    Yields the hook the request builder applies to each agent job's spec.
    """
    rehearsable(plan)
    provider = SimulatedProvider()
    ids: dict[str, str] = {}
    for index, job in enumerate(plan.jobs.values()):
        if job.tool is not None:
            ids[job.name] = f"j{index}"
            provider.add_scenario(ids[job.name], scenario_for(job.spec.rehearse))

    def rehearse(job: PlannedJob, spec: JobFields, home: Path) -> JobFields:
        setup = rehearsal_for(
            get_tool(job.adapter), spec, base_url=provider.scenario_url(ids[job.name]), home=home
        )
        update: dict[str, object] = {
            **setup.spec,
            "home": str(home),
            "extra_args": [*setup.extra_args, *spec.extra_args],
            "env": {**spec.env, **setup.env},
        }
        return spec.model_copy(update=update)

    provider.start()
    try:
        yield rehearse
    finally:
        provider.stop()
