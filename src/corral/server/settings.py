"""What a server is started with: where it listens, which history, its limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
MAX_BODY_BYTES = 1024 * 1024  # a flow document; anything larger is 413
CLIENT_QUEUE = 2000  # frames a live client may fall behind before it is told to resync
HEARTBEAT_S = 15.0
# live events that follow one another within this long share a batch=true message (the
# first after a quiet spell goes at once): the clients of a run that keep up are then
# sent the same, larger messages at once
BATCH_WINDOW_S = 0.03
POLL_S = 0.02  # how often the store is asked for new events


@dataclass(frozen=True)
class ServerSettings:
    """`corral serve`'s options. `directory` is where `.corral` lives (the default
    SQLite history, the run logs, the token file); `store` a history URL."""

    directory: Path = Path()
    store: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body: int = MAX_BODY_BYTES
    client_queue: int = CLIENT_QUEUE
    heartbeat_s: float = HEARTBEAT_S
    batch_window_s: float = BATCH_WINDOW_S
    poll_s: float = POLL_S
    adopt: bool = True  # resume, at start, the server's runs a dead server left running

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost` (a name that may resolve elsewhere is not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
