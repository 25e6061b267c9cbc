"""Events and the bus: one order for every subscriber, and a JSON form decoded by type."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import orjson
import pytest

from corral.events.bus import Bus
from corral.events.codec import event_from_dict, event_to_dict
from corral.events.types import (
    AgentError,
    AgentResult,
    AssistantText,
    BudgetExceeded,
    ConnectionFailing,
    Event,
    JobFinished,
    JobOutput,
    JobRetrying,
    JobSkipped,
    JobStarted,
    JobWaiting,
    RateLimited,
    RunFinished,
    RunRefused,
    RunStarted,
    SessionStarted,
    SpendUpdated,
    ToolCall,
    ToolResult,
    Unparsed,
    UsageUpdated,
)
from corral.models import (
    BudgetAction,
    BudgetScope,
    BudgetUnit,
    Cost,
    CostSource,
    ErrorKind,
    JobStatus,
    RunStatus,
    Usage,
)

USAGE = Usage(input_tokens=3, output_tokens=4, cache_write_1h_tokens=5, turns=1)
PRICED = Cost(Decimal("0.0125"), CostSource.ESTIMATED)

# one event of every kind, with every typed field set to something that is not a default
SAMPLES: list[Event] = [
    RunStarted(run_id="r", flow_name="f", flow_path="/f", jobs=("a", "b"), started_at=1.5),
    RunFinished(run_id="r", status=RunStatus.CANCELLED, ended_at=2.5, error="stopped"),
    JobWaiting(job="a", reason="waiting for b", status=JobStatus.READY),
    JobStarted(
        job="a", attempt=2, pid=7, argv=("x", "y"), log_dir="/l", started_at=1.0, spec={"k": 1}
    ),
    JobOutput(job="a", attempt=1, stream="stderr", text="t", offset=9, truncated=True),
    JobRetrying(job="a", attempt=1, delay_s=1.5, reason="exit code 1"),
    JobSkipped(job="a", reason="skipped"),
    JobFinished(
        job="a",
        attempt=1,
        status=JobStatus.TIMED_OUT,
        exit_code=None,
        signal=9,
        duration_s=3.0,
        error_kind=ErrorKind.IDLE,
        outputs={"v": "1"},
        by_model={"m": USAGE},
        cost=PRICED,
        cost_by_model={"m": Decimal("0.0125")},
        ended_at=4.0,
    ),
    SpendUpdated(
        job="a",
        attempt=1,
        by_model={"m": USAGE},
        cost=PRICED,
        cost_by_model={"m": PRICED, "n": Cost(None, CostSource.UNPRICED)},
        job_usage=USAGE,
        job_cost=PRICED,
        run_usage=USAGE + USAGE,
        run_cost=PRICED + PRICED,
    ),
    BudgetExceeded(
        job="a",
        attempt=1,
        scope=BudgetScope.JOB,
        unit=BudgetUnit.USD,
        limit=Decimal("5.00"),
        spent=Decimal("5.0125"),
        action=BudgetAction.KILL,
    ),
    BudgetExceeded(
        scope=BudgetScope.RUN,
        unit=BudgetUnit.TOKENS,
        limit=1000,
        spent=1200,
        action=BudgetAction.WARN,
    ),
    SessionStarted(job="a", attempt=1, session_id="s", model="m"),
    AssistantText(job="a", attempt=1, text="hi"),
    ToolCall(job="a", attempt=1, name="Bash", call_id="c"),
    ToolResult(job="a", attempt=1, call_id="c", is_error=True, permission_denied=True),
    UsageUpdated(
        job="a",
        attempt=1,
        by_model={"m": USAGE},
        final=True,
        cost=Cost(Decimal("0.5"), CostSource.REPORTED),
        cost_by_model={"m": Decimal("0.5")},
    ),
    RateLimited(job="a", attempt=1, status=429, retry_after_s=2.0, message="slow down"),
    ConnectionFailing(job="a", attempt=1, message="Reconnecting... waiting for network"),
    AgentResult(
        job="a", attempt=1, text="r", is_error=True, error_kind=ErrorKind.AUTH, num_turns=2
    ),
    AgentError(job="a", attempt=1, error_kind=ErrorKind.RATE_LIMIT, message="m", status=429),
    Unparsed(job="a", attempt=1, preview="{"),
    RunRefused(
        run_id="r",
        status=RunStatus.REFUSED,
        ended_at=2.5,
        error="denied by policy: flow.yaml: no",
        denials=({"rule": "corral.shell.deny_shell", "job": "a", "message": "no", "line": 7},),
    ),
]


def _every_kind() -> set[str]:
    found, stack = set(), [Event]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls is not Event:
            found.add(cls.kind)
    return found


def test_the_samples_cover_every_event_kind() -> None:
    assert {event.kind for event in SAMPLES} >= _every_kind()


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.kind)
def test_every_event_survives_its_json_form(event: Event) -> None:
    data = orjson.loads(orjson.dumps(event_to_dict(event)))
    assert data["v"] == 1 and data["kind"] == event.kind
    back = event_from_dict(data)
    assert back == event
    # typed back, not merely equal: enums are enums, money is Decimal, tuples are tuples
    for f in dataclasses.fields(event):
        assert type(getattr(back, f.name)) is type(getattr(event, f.name)), f.name


def test_money_is_exact_text_in_json() -> None:
    data = event_to_dict(SAMPLES[9])
    assert (data["unit"], data["limit"], data["spent"]) == ("usd", "5.00", "5.0125")
    tokens = event_to_dict(SAMPLES[10])
    assert (tokens["unit"], tokens["limit"], tokens["spent"]) == ("tokens", 1000, 1200)


def test_a_subscriber_that_publishes_does_not_reorder_what_others_see() -> None:
    bus = Bus()
    seen: dict[str, list[str]] = {"first": [], "echo": [], "last": []}

    def first(event: Event) -> None:
        seen["first"].append(event.kind)

    def echo(event: Event) -> None:
        seen["echo"].append(event.kind)
        if isinstance(event, UsageUpdated):
            # published while UsageUpdated is being delivered: it must wait its turn
            bus.publish(SpendUpdated(by_model={}, cost=Cost.zero()))
            bus.publish(AssistantText(text="after"))

    def last(event: Event) -> None:
        seen["last"].append(event.kind)

    for subscriber in (first, echo, last):
        bus.subscribe(subscriber)
    bus.publish(UsageUpdated(by_model={}))
    bus.publish(ToolCall(name="x"))
    expected = ["agent.usage", "spend.updated", "agent.text", "agent.tool_call"]
    assert seen == {"first": expected, "echo": expected, "last": expected}


def test_a_failing_subscriber_propagates_and_the_bus_stays_usable() -> None:
    bus = Bus()
    got: list[str] = []

    def broken(event: Event) -> None:
        if isinstance(event, ToolCall):
            bus.publish(AssistantText(text="queued"))
            raise RuntimeError("bug")
        got.append(event.kind)

    bus.subscribe(broken)
    with pytest.raises(RuntimeError):
        bus.publish(ToolCall(name="x"))
    bus.publish(AssistantText(text="next"))
    assert got == ["agent.text"]  # the queued event went with the bug


def test_a_subscriber_without_output_gets_every_other_event_in_order() -> None:
    bus = Bus()
    everything: list[str] = []
    no_lines: list[str] = []
    bus.subscribe(lambda event: everything.append(event.kind))
    bus.subscribe(lambda event: no_lines.append(event.kind), output=False)
    line = JobOutput(job="a", attempt=1, stream="stdout", text="hi", offset=0)
    for event in (line, ToolCall(name="x"), line, AssistantText(text="y")):
        bus.publish(event)
    assert everything == ["job.output", "agent.tool_call", "job.output", "agent.text"]
    assert no_lines == ["agent.tool_call", "agent.text"]
