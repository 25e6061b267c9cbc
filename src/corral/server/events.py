"""The live event endpoints: WebSocket and Server-Sent Events over `corral.server.live`.

WebSocket close codes: 4000 the server is restarting (reconnect with `after`), 4001 told
to resync (reconnect with `after`), 4400 a bad request, 4401 no valid token, 4404 an
unknown run. An error is sent as `{"type": "error", "error": {...}}` before the close.

With `batch=true` a WebSocket message is a JSON array of those frames, in order: a
batch of `corral.server.live` (the frames ready at once: a page of a replay, what the
hub queued for the client while it was sending), so a client that keeps up gets one
frame a message and a burst goes out as one write instead of one message each (~3
events a job x 1,000 jobs x 100 clients is 300,000 messages otherwise). Each frame is
unchanged, its seq with it. Without `batch` every message is one frame, as before (the
dashboard's protocol). SSE writes a batch's events in one chunk.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from corral.server.auth import SESSION_COOKIE, bearer, same_origin
from corral.server.errors import ApiError, unauthorized
from corral.server.frames import frame_sender, text_frame
from corral.server.live import Batch, Out, open_batches
from corral.server.security import principal
from corral.server.state import state_of, ws_state

router = APIRouter()

CLOSE_RESTART = 4000
CLOSE_RESYNC = 4001
# a server shutting down (503) tells the client to come back, as a drained socket does
_CLOSE_FOR = {400: 4400, 401: 4401, 403: 4403, 404: 4404, 503: CLOSE_RESTART}


@router.websocket("/events")
async def events_socket(
    websocket: WebSocket, run: str | None = None, after: str | None = None, batch: bool = False
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
        stream = await open_batches(state.hub, run, after, state.settings.heartbeat_s, window=batch)
    except ApiError as error:
        body = orjson.dumps({"type": "error", **error.body()})
        await websocket.send_text((b"[" + body + b"]" if batch else body).decode())
        await websocket.close(_CLOSE_FOR.get(error.status, 4400), error.code)
        return
    try:
        final = await (_send_batched(websocket, stream) if batch else _send(websocket, stream))
        if final is not None:
            code = CLOSE_RESTART if final.kind == "reconnect" else CLOSE_RESYNC
            reason = "server restarting: reconnect" if code == CLOSE_RESTART else "resync"
            await websocket.close(code, reason)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client went away
    finally:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
        if websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await websocket.close(1000)


async def _send(websocket: WebSocket, stream: AsyncIterator[Batch]) -> Out | None:
    """One frame a message; returns the final frame (resync, reconnect) if one came."""
    async for batch in stream:
        for out in batch:
            await websocket.send_text(out.body.decode())
            if out.final:
                return out
    return None


async def _send_batched(websocket: WebSocket, stream: AsyncIterator[Batch]) -> Out | None:
    """The frames ready at once as one JSON array a message (the module docstring);
    returns the final frame if one came (it ends its batch). Under `corral serve` the
    message's WebSocket frame is made once for every client (`corral.server.frames`)."""
    send_frame = frame_sender(websocket.scope)
    async for batch in stream:
        if send_frame is not None:
            await send_frame(_frame(batch))
        else:
            await websocket.send_text(_message(batch))
        if batch[-1].final:
            return batch[-1]
    return None


@dataclass(slots=True)
class _Made:
    batch: Batch
    payload: bytes  # the JSON array
    text: str | None = None
    frame: bytes | None = None


# the last batches' messages: the clients of a run that keep up are handed the same
# batch (the same list: `corral.server.live`, a flush of the hub), so its message is
# made once for all of them. A batch is kept with its message, so that the id in a key
# is never one reused by a newer object.
_MESSAGES: dict[int, _Made] = {}
_MESSAGES_KEPT = 64


def _made(batch: Batch) -> _Made:
    made = _MESSAGES.get(id(batch))
    if made is not None and made.batch is batch:
        return made
    made = _Made(batch, b"[" + b",".join(out.body for out in batch) + b"]")
    if len(_MESSAGES) >= _MESSAGES_KEPT:
        del _MESSAGES[next(iter(_MESSAGES))]
    _MESSAGES[id(batch)] = made
    return made


def _message(batch: Batch) -> str:
    """The batch as one message: a JSON array of its frames."""
    made = _made(batch)
    if made.text is None:
        made.text = made.payload.decode()
    return made.text


def _frame(batch: Batch) -> bytes:
    """The batch's message as a whole WebSocket text frame."""
    made = _made(batch)
    if made.frame is None:
        made.frame = text_frame(made.payload)
    return made.frame


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
    stream = await open_batches(state.hub, run, resume_from, state.settings.heartbeat_s)
    return StreamingResponse(
        _sse(stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _sse(stream: AsyncIterator[Batch]) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    try:
        async for batch in stream:  # the frames ready at once: one write
            yield b"".join(_sse_event(out) for out in batch)
            if batch[-1].final:
                return
    finally:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator


def _sse_event(out: Out) -> bytes:
    head = f"id: {out.cursor}\n" if out.cursor is not None else ""
    return f"{head}event: {out.kind}\ndata: ".encode() + out.body + b"\n\n"
