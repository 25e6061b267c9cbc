"""A WebSocket message's frame made once and written as it is to every socket.

A batch of the hub's flush goes to every client of a run that keeps up (`corral.server.
live`): the same text to a hundred sockets. Through ASGI each send builds its frame again
(starlette's and uvicorn's send, websockets' frame serialisation, the text encoded and
copied three times): about 25 us of the 40 a send took on a quiet machine, the rest
being the socket write itself. `corral serve` runs uvicorn with `FrameProtocol`, its
sans-I/O websockets protocol with one more send, offered to the app in the connection's
ASGI scope (`scope["extensions"][EXTENSION]`): a complete frame, written to the
transport as it is. Anything else (accept, close, errors, pings) goes the usual way.

Sound because the server's frames are plain: a server does not mask, `corral serve`
turns permessage-deflate off (no extension rewrites a frame), and a message is never
fragmented; a frame is written whole in one `transport.write`, so it cannot interleave
with uvicorn's own pings and closes. The send waits for the transport to drain, as
uvicorn's does, and refuses once the connection is not open. Under another server (or
without websockets installed) the extension is absent and `send_text` is used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

EXTENSION = "corral.frame"  # scope["extensions"][EXTENSION]: send a frame made once

SendFrame = Callable[[bytes], Awaitable[None]]


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame of `payload` (UTF-8), as a server sends it (RFC 6455,
    5.2)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return head + payload


def frame_sender(scope: Any) -> SendFrame | None:
    """The connection's send of a frame made once, when its server offers one."""
    extensions = scope.get("extensions") or {}
    send = extensions.get(EXTENSION)
    return send if callable(send) else None


def protocol_class() -> type[Any] | str:
    """`FrameProtocol` for uvicorn's `ws` option ("auto" when websockets is missing)."""
    try:
        from corral.server._frameproto import FrameProtocol
    except ImportError:  # uvicorn without websockets: its own choice
        return "auto"
    return FrameProtocol
