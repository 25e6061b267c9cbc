"""The FastAPI application: `create_app(settings)` wires the history, the tokens, the
event hub and the run manager, and mounts /api/v1 (REST, live events, OpenAPI at
/api/v1/openapi.json), /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from corral import __version__
from corral.server import api, events
from corral.server import errors as api_errors
from corral.server.auth import TokenBook, default_owner, load_or_create
from corral.server.errors import ApiError
from corral.server.hub import EventHub
from corral.server.runs import RunManager
from corral.server.settings import ServerSettings
from corral.server.state import ServerState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_folder(settings: ServerSettings) -> Path:
    """Where the token digests live: next to the history (its folder for a SQLite file,
    else the `.corral` folder of --dir)."""
    from urllib.parse import unquote

    from corral.app.location import corral_dir

    url = settings.store
    if url and url.startswith("sqlite:///") and not url.endswith(":memory:"):
        path = unquote(url.removeprefix("sqlite:///").partition("?")[0])  # as SQLAlchemy reads it
        return Path(path).expanduser().resolve().parent
    return corral_dir(settings.directory.resolve())


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413: by its Content-Length, or, for
    a body sent without one (chunked), by reading it (up to the limit) before the app."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
        if length is not None:
            if length > self.limit:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        error = ApiError(
            413, "too_large", f"the request body is over {self.limit} bytes (--max-body)"
        )
        response = error.response()
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(
    settings: ServerSettings,
    *,
    tokens: TokenBook | None = None,
    warn: Callable[[str], None] = lambda message: None,
) -> FastAPI:
    """The server's ASGI app. `tokens` default: `settings.token`, else the stored ones."""
    from corral.app.location import open_history

    if tokens is None:
        if settings.token:
            tokens = TokenBook.given(settings.token, default_owner())
        else:
            tokens = load_or_create(token_folder(settings)).book
    book = tokens

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        history = await asyncio.to_thread(open_history, settings.store, settings.directory)
        assert history is not None  # opened (and created), not merely looked for
        hub = EventHub(
            history,
            poll_s=settings.poll_s,
            queue_size=settings.client_queue,
            batch_window_s=settings.batch_window_s,
        )
        runs = RunManager(settings, hub, warn)
        state = ServerState(settings, history, book, hub, runs)
        app.state.corral = state
        await hub.step()  # the first look: what is running already
        follower = asyncio.create_task(hub.follow(), name="corral-hub")
        adoption = asyncio.create_task(
            runs.adopt() if settings.adopt else _nothing(runs), name="corral-adopt"
        )
        try:
            yield
        finally:
            await drain(app)
            await runs.close()
            follower.cancel()
            adoption.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await adoption
            await asyncio.to_thread(history.close)

    app = FastAPI(
        title="corral",
        version=__version__,
        summary="Run fleets of coding-agent CLIs; follow them live.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    api_errors.install(app)
    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(api.router)
    v1.include_router(events.router)
    app.include_router(v1)
    _probes(app)
    from corral.server import dashboard  # the browser app at /, after the API's routes

    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, limit=settings.max_body)
    return app


async def _nothing(runs: RunManager) -> list[str]:
    runs.adopted = True
    return []


async def drain(app: FastAPI) -> None:
    """Stop taking runs, hand every committed event out, and end the live clients with
    their reconnect frame. Idempotent: SIGTERM calls it before uvicorn shuts down."""
    state: ServerState | None = getattr(app.state, "corral", None)
    if state is None or not state.runs.accepting:
        return
    await state.runs.stop()
    await state.hub.close()


def _probes(app: FastAPI) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        state: ServerState = app.state.corral
        checks = {
            "store": await asyncio.to_thread(_store_ok, state),
            "executor": _executor_ok(),
            "adoption": state.runs.adopted,
            "events": state.hub.ready and state.hub.failing is None,
            "accepting": state.runs.accepting,
        }
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        from corral.server.metrics import render

        text = await asyncio.to_thread(render, app.state.corral)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def _store_ok(state: ServerState) -> bool:
    """The history answers and its database is writable."""
    try:
        state.history.list_runs(limit=1)
        engine = getattr(state.history, "engine", None)
        if engine is not None:
            from sqlalchemy import text

            with engine.begin() as conn:  # an empty write transaction: the lock is takeable
                conn.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready; /readyz reports it, not raises it
        return False
    return True


def _executor_ok() -> bool:
    from corral.execute.registry import DEFAULT_EXECUTOR
    from corral.plugins import EXECUTORS, entries

    return DEFAULT_EXECUTOR in entries(EXECUTORS)
