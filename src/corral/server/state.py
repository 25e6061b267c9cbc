"""What one server holds while it runs: its settings, history, tokens, hub and runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request, WebSocket

from corral.server.auth import TokenBook
from corral.server.hub import EventHub
from corral.server.runs import RunManager
from corral.server.settings import ServerSettings
from corral.store.protocols import HistoryStore


@dataclass
class ServerState:
    settings: ServerSettings
    history: HistoryStore
    tokens: TokenBook
    hub: EventHub
    runs: RunManager
    rejected_auth: int = 0
    notes: list[str] = field(default_factory=list)


def state_of(request: Request) -> ServerState:
    found: ServerState = request.app.state.corral
    return found


def ws_state(websocket: WebSocket) -> ServerState:
    found: ServerState = websocket.app.state.corral
    return found
