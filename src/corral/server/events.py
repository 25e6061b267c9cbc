"""The live event endpoints: WebSocket and Server-Sent Events over `corral.server.live`.

WebSocket close codes: 4000 the server is restarting (reconnect with `after`), 4001 told
to resync (reconnect with `after`), 4400 a bad request, 4401 no valid token, 4404 an
unknown run. An error is sent as `{"type": "error", "error": {...}}` before the close.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from corral.server.auth import SESSION_COOKIE, bearer, same_origin
from corral.server.errors import ApiError, unauthorized
from corral.server.live import Out, open_stream
from corral.server.security import principal
from corral.server.state import state_of, ws_state

router = APIRouter()

CLOSE_RESTART = 4000
CLOSE_RESYNC = 4001
# a server shutting down (503) tells the client to come back, as a drained socket does
_CLOSE_FOR = {400: 4400, 401: 4401, 403: 4403, 404: 4404, 503: CLOSE_RESTART}


@router.websocket("/events")
async def events_socket(
    websocket: WebSocket, run: str | None = None, after: str | None = None
) -> None:
    state = ws_state(websocket)
    await websocket.accept()
    token = bearer(websocket.headers.get("authorization"))
    if token is None and same_origin(
        websocket.headers.get("origin"), websocket.headers.get("host")
    ):
        token = websocket.cookies.get(SESSION_COOKIE)
    try:
        if state.tokens.check(token) is None:
            state.rejected_auth += 1
            raise unauthorized()
        stream = await open_stream(state.hub, run, after, state.settings.heartbeat_s)
    except ApiError as error:
        await websocket.send_text(orjson.dumps({"type": "error", **error.body()}).decode())
        await websocket.close(_CLOSE_FOR.get(error.status, 4400), error.code)
        return
    try:
        async for out in stream:
            await websocket.send_text(out.body.decode())
            if out.final:
                code = CLOSE_RESTART if out.kind == "reconnect" else CLOSE_RESYNC
                reason = "server restarting: reconnect" if code == CLOSE_RESTART else "resync"
                await websocket.close(code, reason)
                return
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client went away
    finally:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
        if websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await websocket.close(1000)


@router.get(
    "/events",
    summary="Live events as Server-Sent Events (Last-Event-ID or after=)",
    response_class=StreamingResponse,
)
async def events_sse(
    request: Request, run: str | None = None, after: str | None = None
) -> StreamingResponse:
    principal(request)
    state = state_of(request)
    resume_from = request.headers.get("last-event-id") or after
    stream = await open_stream(state.hub, run, resume_from, state.settings.heartbeat_s)
    return StreamingResponse(
        _sse(stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _sse(stream: AsyncIterator[Out]) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    try:
        async for out in stream:
            head = f"id: {out.cursor}\n" if out.cursor is not None else ""
            yield f"{head}event: {out.kind}\ndata: ".encode() + out.body + b"\n\n"
            if out.final:
                return
    finally:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
