"""A simulated model provider (Anthropic, OpenAI Responses and Chat Completions, Gemini) for
rehearsing real CLIs."""

from __future__ import annotations

from corral.provider.rehearsal import Rehearsal, prepare
from corral.provider.scenarios import Kind, Scenario, Usage
from corral.provider.server import RecordedRequest, SimulatedProvider

__all__ = [
    "Kind",
    "RecordedRequest",
    "Rehearsal",
    "Scenario",
    "SimulatedProvider",
    "Usage",
    "prepare",
]
