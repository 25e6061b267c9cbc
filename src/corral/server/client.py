"""The CLI's side of `--server URL`: credentials, HTTP calls, and following live events
with reconnects.

Tokens for the CLI live in `$XDG_CONFIG_HOME/corral/credentials.json` (default
`~/.config`), mode 0600, one per server URL; CORRAL_TOKEN overrides them.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from corral.errors import CorralError, FlowError, NotFoundError, Problem, UsageError
from corral.private import replace_private

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

API = "/api/v1"


class ServerError(CorralError):
    """The server refused a request or could not be reached."""

    exit_code = 3


def normal_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "corral" / "credentials.json"


def _read_credentials() -> dict[str, Any]:
    path = credentials_path()
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError:
        raise UsageError(
            f"{path} is not valid JSON", hint="delete it and run `corral login`"
        ) from None
    return data if isinstance(data, dict) else {}


def save_token(url: str, token: str) -> Path:
    """Store `token` for `url` (0600; written anew, never widened)."""
    path = credentials_path()
    data = _read_credentials()
    servers = data.setdefault("servers", {})
    servers[normal_url(url)] = {"token": token}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    replace_private(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return path


def token_for(url: str) -> str:
    """The token to send to `url`: CORRAL_TOKEN, else the one `corral login` stored."""
    if token := os.environ.get("CORRAL_TOKEN"):
        return token
    entry = _read_credentials().get("servers", {}).get(normal_url(url))
    if isinstance(entry, dict) and isinstance(entry.get("token"), str):
        return str(entry["token"])
    raise UsageError(
        f"no token for {normal_url(url)}",
        hint=f"run `corral login {normal_url(url)}` or set CORRAL_TOKEN",
    )


def _error(status: int, body: bytes, url: str) -> CorralError:
    try:
        error = orjson.loads(body)["error"]
        message, code = str(error["message"]), str(error["code"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        error, message, code = {}, body[:200].decode(errors="replace"), "http_error"
    if status == 401:
        return ServerError(f"{url} refused the token ({message})", hint=f"run `corral login {url}`")
    if status == 404:
        return NotFoundError(message)
    if code == "invalid_flow" and isinstance(error.get("errors"), list):
        return FlowError([_problem(p) for p in error["errors"]])
    failure = CorralError(message) if status < 500 else ServerError(message)
    if status == 409:
        failure.exit_code = 2
    return failure


def _problem(data: dict[str, Any]) -> Problem:
    # the message is already the CLI's whole line (file:line:col: path: what)
    return _Said(str(data.get("message", "")))


class _Said(Problem):
    def __init__(self, text: str) -> None:
        super().__init__("", None, None, "", text)

    def __str__(self) -> str:
        return self.message


class Server:
    """A corral server at `url` (a blocking client for the CLI's one-shot commands)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        import httpx

        self.url = normal_url(url)
        self.token = token if token is not None else token_for(self.url)
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, API + path, **kwargs)
        except httpx.HTTPError as error:
            raise ServerError(
                f"cannot reach {self.url}: {error}", hint="is `corral serve` running there?"
            ) from None
        if response.status_code >= 400:
            raise _error(response.status_code, response.content, self.url)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body or {})

    def stream_lines(self, path: str, **params: Any) -> Any:
        """The lines of a streaming (NDJSON) response, as they come."""
        import httpx

        clean = {k: v for k, v in params.items() if v is not None}
        try:
            with self._http.stream("GET", API + path, params=clean, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response.status_code, response.content, self.url)
                yield from response.iter_lines()
        except httpx.HTTPError as error:
            raise ServerError(f"lost {self.url}: {error}") from None


Frame = dict[str, Any]


async def follow_events(
    url: str,
    token: str,
    run_id: str,
    on_frame: Callable[[Frame], Awaitable[bool] | bool],
    *,
    after: int = 0,
    stop: asyncio.Event | None = None,
    give_up_after_s: float = 120.0,
) -> int:
    """Follow run `run_id`'s events over the WebSocket from `after`, reconnecting with
    backoff (and from the last seq) whenever the connection drops, the server restarts
    or asks for a resync. `on_frame` gets each event frame once, in order; it returns
    True to stop. Returns the last seq received."""
    import websockets
    from websockets.asyncio.client import connect

    base = normal_url(url).replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    delay, down_since = 0.1, None
    loop = asyncio.get_running_loop()
    while stop is None or not stop.is_set():
        try:
            async with connect(
                f"{base}{API}/events?run={run_id}&after={after}&batch=true",
                additional_headers={"Authorization": f"Bearer {token}"},
                max_size=None,
            ) as socket:
                down_since, delay = None, 0.1
                async for message in received(socket):
                    for frame in orjson.loads(message):  # batched: frames in order
                        kind = frame.get("type")
                        if kind == "error":
                            error = frame.get("error", {})
                            raise _error(_status_of(error.get("code")), orjson.dumps(frame), url)
                        if kind in ("heartbeat", "resync", "reconnect"):
                            continue
                        seq = int(frame["seq"])
                        if seq <= after:
                            continue
                        after = seq
                        done = on_frame(frame)
                        if not isinstance(done, bool):
                            done = await done
                        if done:
                            return after
        except (TimeoutError, OSError, websockets.WebSocketException):
            pass
        if down_since is None:
            down_since = loop.time()
        elif loop.time() - down_since > give_up_after_s:
            raise ServerError(f"lost {normal_url(url)} for {give_up_after_s:.0f}s; giving up")
        await asyncio.sleep(delay * (1 + random.random() / 2))
        delay = min(delay * 2, 5.0)
    return after


async def received(socket: ClientConnection) -> AsyncIterator[bytes]:
    """A WebSocket's messages, as `async for message in socket` gives them until a normal
    close, but as the bytes received: orjson parses a text message's UTF-8 (and rejects
    it if invalid) without its decoding to a str first (a third of the parse's time)."""
    from websockets.exceptions import ConnectionClosedOK

    try:
        while True:
            yield await socket.recv(decode=False)
    except ConnectionClosedOK:
        return


def _status_of(code: str | None) -> int:
    return {"unauthorized": 401, "not_found": 404}.get(code or "", 400)
