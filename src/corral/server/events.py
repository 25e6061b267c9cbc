"""The live event endpoints: WebSocket and Server-Sent Events over `corral.server.live`.

WebSocket close codes: 4000 the server is restarting (reconnect with `after`), 4001 told
to resync (reconnect with `after`), 4400 a bad request, 4401 no valid token, 4404 an
unknown run. An error is sent as `{"type": "error", "error": {...}}` before the close.

With `batch=true` a WebSocket message is a JSON array of those frames, in order: the
frames that were ready when the socket was free to send, so a client that keeps up gets
one frame a message and one that lags behind (or a burst) gets many in one write
instead of one message each (~5 events a job x 1,000 jobs x 100 clients is 500,000
messages otherwise). Each frame is unchanged, its seq with it. Without `batch` every
message is one frame, as before (the dashboard's protocol).
"""

from __future__ import annotations

import asyncio
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
        stream = await open_stream(state.hub, run, after, state.settings.heartbeat_s)
    except ApiError as error:
        body = orjson.dumps({"type": "error", **error.body()})
        await websocket.send_text((b"[" + body + b"]" if batch else body).decode())
        await websocket.close(_CLOSE_FOR.get(error.status, 4400), error.code)
        return
    try:
        if batch:
            final = await _send_batched(websocket, stream, state.settings.client_queue)
        else:
            final = await _send(websocket, stream)
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


async def _send(websocket: WebSocket, stream: AsyncIterator[Out]) -> Out | None:
    """One frame a message; returns the final frame (resync, reconnect) if one came."""
    async for out in stream:
        await websocket.send_text(out.body.decode())
        if out.final:
            return out
    return None


# the most frames one batched message holds: the bound of the hand-over between the
# stream and the socket (at most the client's queue in the hub, so that a client that
# does not read is told to resync after at most twice its queue, as without batching
# after once)
BATCH_MAX = 512


async def _send_batched(websocket: WebSocket, stream: AsyncIterator[Out], bound: int) -> Out | None:
    """The frames ready when the socket is free, as one JSON array a message (the
    module docstring); returns the final frame if one came. The stream runs in a task
    of its own until it waits: what it yielded meanwhile goes out in one write."""
    ready: asyncio.Queue[Out | None] = asyncio.Queue(max(1, min(BATCH_MAX, bound)))

    async def produce() -> None:
        try:
            async for out in stream:
                await ready.put(out)
                if out.final:
                    break
        finally:
            await ready.put(None)  # the end (the task is only cancelled by the sender)

    producer = asyncio.create_task(produce())
    try:
        while True:
            outs = [await ready.get()]
            while not ready.empty():
                outs.append(ready.get_nowait())
            frames = [out for out in outs if out is not None]
            if frames:
                await websocket.send_text(
                    (b"[" + b",".join(out.body for out in frames) + b"]").decode()
                )
            if frames and frames[-1].final:
                return frames[-1]
            if outs[-1] is None:  # the stream ended (or failed: its error is raised)
                await producer
                return None
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


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
