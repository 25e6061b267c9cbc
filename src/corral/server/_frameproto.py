"""uvicorn's sans-I/O websockets protocol with a send of a frame made once
(`corral.server.frames`). Imported only when uvicorn and websockets are."""

from __future__ import annotations

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from corral.server.frames import EXTENSION

# uvicorn's own state that `send_frame` reads: they are its internals, so a uvicorn that
# no longer has one of them gets no extension (the app then uses send_text), not a
# broken send
_READS = ("writable", "disconnected", "close_sent", "handshake_complete", "conn", "transport")


class FrameProtocol(WebSocketsSansIOProtocol):
    """Offers `send_frame` to the app in each connection's scope."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is None or not all(hasattr(self, name) for name in _READS):
            return
        if not self.close_sent:
            scope["extensions"][EXTENSION] = self.send_frame

    async def send_frame(self, frame: bytes) -> None:
        """Write `frame` (a whole text frame: `frames.text_frame`) to the socket, as
        uvicorn's own send does once it has made the frame."""
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.close_sent or not self.handshake_complete or self.conn.state is not State.OPEN:
            raise RuntimeError("the WebSocket is not open")
        self.transport.write(frame)
