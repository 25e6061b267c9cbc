"""A simulated model provider (Anthropic, OpenAI Responses and Chat Completions, Gemini) for
rehearsing real CLIs.

How each CLI is pointed at it is the CLI's tool adapter's business (`Tool.rehearse`).
"""

from __future__ import annotations

from corral.provider.scenarios import Kind, Scenario, ScenarioUsage
from corral.provider.server import RecordedRequest, SimulatedProvider

__all__ = [
    "Kind",
    "RecordedRequest",
    "Scenario",
    "ScenarioUsage",
    "SimulatedProvider",
]
