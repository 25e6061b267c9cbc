"""Typed, versioned events, their JSON form, and the in-process bus every subscriber
listens on."""

from corral.events.bus import Bus, Subscriber
from corral.events.codec import event_from_dict, event_to_dict
from corral.events.types import (
    AgentError,
    AgentResult,
    AssistantText,
    BudgetExceeded,
    Event,
    JobFinished,
    JobOutput,
    JobRetrying,
    JobSkipped,
    JobStarted,
    JobWaiting,
    RateLimited,
    RunFinished,
    RunStarted,
    SessionStarted,
    SpendUpdated,
    ToolCall,
    ToolResult,
    Unparsed,
    UsageUpdated,
)

__all__ = [
    "AgentError",
    "AgentResult",
    "AssistantText",
    "BudgetExceeded",
    "Bus",
    "Event",
    "JobFinished",
    "JobOutput",
    "JobRetrying",
    "JobSkipped",
    "JobStarted",
    "JobWaiting",
    "RateLimited",
    "RunFinished",
    "RunStarted",
    "SessionStarted",
    "SpendUpdated",
    "Subscriber",
    "ToolCall",
    "ToolResult",
    "Unparsed",
    "UsageUpdated",
    "event_from_dict",
    "event_to_dict",
]
