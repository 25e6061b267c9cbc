"""The bus hands a subscriber that names the events it reads only those."""

from __future__ import annotations

import inspect
import re
from decimal import Decimal

import pytest

from corral.budget.accounting import Ledger
from corral.budget.guard import BudgetGuard
from corral.budget.ratelimit import RateLimitGate
from corral.events.bus import Bus
from corral.events.types import (
    AssistantText,
    Event,
    JobFinished,
    JobStarted,
    RunFinished,
    RunRefused,
    UsageUpdated,
)
from corral.journal.joblog import JobLog
from corral.models import JobStatus, RunStatus, Usage


def started(job: str) -> JobStarted:
    return JobStarted(job=job, attempt=1, pid=1, argv=("x",), log_dir="/l", started_at=0.0)


def test_a_subscriber_gets_only_the_events_it_names_and_their_subclasses_in_order() -> None:
    bus = Bus()
    everything: list[Event] = []
    finished: list[Event] = []
    bus.subscribe(everything.append)
    bus.subscribe(finished.append, events=(RunFinished, JobStarted))
    refused = RunRefused(run_id="r", status=RunStatus.REFUSED, ended_at=1.0)
    for event in (AssistantText(text="a"), started("j"), refused, AssistantText(text="b")):
        bus.publish(event)
    assert finished == [started("j"), refused]
    assert len(everything) == 4


def test_a_subscriber_class_may_name_its_events_and_nested_publishing_keeps_the_order() -> None:
    bus = Bus()
    seen: list[str] = []

    class Usages:
        BUS_EVENTS = (UsageUpdated,)

        def __call__(self, event: Event) -> None:
            seen.append(f"usages:{event.kind}")
            bus.publish(AssistantText(job=event.job, text="said"))

    def everyone(event: Event) -> None:
        seen.append(f"all:{event.kind}")

    bus.subscribe(Usages())
    bus.subscribe(everyone)
    bus.publish(AssistantText(text="x"))
    bus.publish(UsageUpdated(by_model={"m": Usage(input_tokens=1)}))
    assert seen == [
        "all:agent.text",
        "usages:agent.usage",
        "all:agent.usage",
        "all:agent.text",
    ]


def test_unsubscribing_and_subscribing_again_reroute() -> None:
    bus = Bus()
    got: list[Event] = []
    bus.publish(AssistantText(text="before"))
    bus.subscribe(got.append, events=(AssistantText,))
    bus.publish(AssistantText(text="in"))
    bus.unsubscribe(got.append)
    bus.publish(AssistantText(text="after"))
    assert [e.text for e in got if isinstance(e, AssistantText)] == ["in"]
    with pytest.raises(ValueError):
        bus.unsubscribe(got.append)


@pytest.mark.parametrize("subscriber", [Ledger, BudgetGuard, RateLimitGate, JobLog])
def test_each_core_subscriber_names_every_event_it_reads(subscriber: type) -> None:
    # what `__call__` looks at must be among the events the bus gives it
    source = inspect.getsource(subscriber.__call__)
    read = set(re.findall(r"isinstance\(event, (\w+)\)", source))
    assert read, source
    assert read <= {kind.__name__ for kind in subscriber.BUS_EVENTS}


def test_the_ledger_still_prices_what_it_is_given_through_the_bus() -> None:
    bus = Bus()
    spent: list[Event] = []
    ledger = Ledger(publish=bus.publish)
    bus.subscribe(ledger, output=False)
    bus.subscribe(spent.append)
    bus.publish(started("j"))
    bus.publish(UsageUpdated(job="j", attempt=1, by_model={"m": Usage(input_tokens=3)}))
    bus.publish(
        JobFinished(
            job="j",
            attempt=1,
            status=JobStatus.SUCCEEDED,
            exit_code=0,
            signal=None,
            duration_s=1.0,
            cost_by_model={"m": Decimal(0)},
        )
    )
    assert [e.kind for e in spent] == [
        "job.started",
        "agent.usage",
        "spend.updated",
        "job.finished",
    ]


@pytest.mark.parametrize("mode", ["quiet", "prefixed", "grouped"])
def test_the_quiet_printer_is_given_only_job_ends_and_prints_as_before(mode: str) -> None:
    import io

    from corral.events.types import ToolCall
    from corral.render.printer import LinePrinter

    def printed(routed: bool) -> str:
        out = io.StringIO()
        printer = LinePrinter(["a"], mode=mode, stream=out)
        if not routed:  # every event, as a bus with no routing would give it
            printer.BUS_EVENTS = None
        bus = Bus()
        bus.subscribe(printer, output=False)
        for event in (
            started("a"),
            AssistantText(job="a", attempt=1, text="thinking"),
            ToolCall(job="a", attempt=1, name="Bash", detail="ls"),
            JobFinished(
                job="a",
                attempt=1,
                status=JobStatus.FAILED,
                exit_code=1,
                signal=None,
                duration_s=1.0,
                error="exit code 1",
            ),
        ):
            bus.publish(event)
        routes = {kind.__name__ for kind, subs in bus._routes.items() if printer in subs}
        every = {"JobStarted", "AssistantText", "ToolCall", "JobFinished"}
        expected = {"JobFinished"} if mode == "quiet" and routed else every
        assert routes == expected
        return out.getvalue()

    assert printed(True) == printed(False)
    assert ("exit code 1" in printed(True)) and (mode != "quiet" or "thinking" not in printed(True))
