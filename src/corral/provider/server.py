"""The simulated model provider: one threaded HTTP server speaking every model API it knows."""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from corral.provider.anthropic import AnthropicMessages
from corral.provider.chat import OpenAIChat
from corral.provider.gemini import GeminiApi
from corral.provider.openai import OpenAIResponses
from corral.provider.scenarios import Kind, Scenario, next_reply
from corral.provider.wire import Call, Dialect, ErrorReply, JsonObject, Route, SseEvent

DIALECTS: tuple[Dialect, ...] = (AnthropicMessages(), OpenAIResponses(), OpenAIChat(), GeminiApi())
_SCENARIO_PREFIX = re.compile(r"/s/(?P<id>[^/?]+)(?P<rest>/.*)?")
# headers not worth keeping: transport details, identical on every request
# a model request is a few MB at most (a long conversation); more is refused with 413
MAX_BODY_BYTES = 32 * 1024 * 1024
# one thread per connection: past this many, a new connection gets 503 and is closed
MAX_CONNECTIONS = 256
_UNRECORDED = frozenset({"content-length", "connection", "host", "accept-encoding"})
# how many streamed events a `hang` or `failed` scenario sends before it stalls or fails
_EVENTS_BEFORE_TROUBLE = 2


@dataclass(frozen=True)
class RecordedRequest:
    """One request the provider received, as the CLI sent it."""

    scenario: str  # the id from the `/s/<id>/` prefix; "" without one
    api: str  # "anthropic", "openai", "openai-chat" or "gemini"
    method: str
    path: str  # after the scenario prefix, query included
    headers: Mapping[str, str]  # lower-case names
    body: JsonObject


class SimulatedProvider:
    """An HTTP server on `host:port` (0 = any free port) that plays scenarios.

    Use it as a context manager, or call `start()` and `stop()`. Requests under
    `scenario_url(id)` play the scenario registered as `id` (the default one for an unknown
    id). `stop()` returns promptly even while streams hang.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        scenarios: Mapping[str, Scenario] | None = None,
        default: Scenario | None = None,
        max_body: int = MAX_BODY_BYTES,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._address = (host, port)
        self.max_body = max_body
        self.max_connections = max_connections
        self._scenarios: dict[str, Scenario] = dict(scenarios or {})
        self.default = default or Scenario()
        self._recorded: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> SimulatedProvider:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self._address, _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="corral-provider",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, release stalled streams and close every connection."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes `hang` and `slow` streams
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(timeout)
        server.join_handlers(timeout)
        self._server = self._thread = None

    def __enter__(self) -> SimulatedProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        """Whether stop() has begun; streams still open are being cut short."""
        return self._stopping.is_set()

    @property
    def active_connections(self) -> int:
        """Connections open right now (streams in flight and idle keep-alives)."""
        return self._server.connection_count() if self._server else 0

    # -- addresses ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, `http://127.0.0.1:PORT` (the default scenario)."""
        if self._server is None:
            raise RuntimeError("the provider is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def scenario_url(self, scenario_id: str) -> str:
        """The base URL that plays `scenario_id`; the CLIs keep this path prefix."""
        return f"{self.url}/s/{scenario_id}"

    # -- scenarios and records ------------------------------------------------------------

    def add_scenario(self, scenario_id: str, scenario: Scenario) -> str:
        """Register (or replace) a scenario; returns its base URL once started."""
        if not scenario_id or "/" in scenario_id:
            raise ValueError(f"a scenario id must be a non-empty path segment: {scenario_id!r}")
        with self._lock:
            self._scenarios[scenario_id] = scenario
        return self.scenario_url(scenario_id) if self._server else ""

    def scenario(self, scenario_id: str) -> Scenario:
        """The scenario an id plays (the default for an unknown id)."""
        with self._lock:
            return self._scenarios.get(scenario_id, self.default)

    def requests(self, scenario_id: str | None = None) -> list[RecordedRequest]:
        """Requests received, oldest first: all, or those under one scenario id."""
        with self._lock:
            return [r for r in self._recorded if scenario_id in (None, r.scenario)]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._recorded.append(request)

    # -- one exchange (runs on the handler's thread) --------------------------------------

    def _serve(self, handler: _Handler) -> None:
        target, _, query = handler.path.partition("?")
        scenario_id, path = _split_scenario(target)
        found = _find_dialect(path)
        body_bytes = handler.read_body(self.max_body)
        if body_bytes is None:
            handler.close_connection = True
            handler.send_json(
                413, {"error": {"message": f"simulated: bodies stop at {self.max_body} bytes"}}
            )
            return
        if found is None:
            handler.send_json(404, {"error": {"message": f"simulated: no API at {path}"}})
            return
        dialect, route = found
        try:
            body = json.loads(body_bytes or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            handler.send_error_reply(dialect.error(400, "simulated: the body is not JSON", None))
            return
        headers = {k.lower(): v for k, v in handler.headers.items() if k.lower() not in _UNRECORDED}
        full_path = f"{path}?{query}" if query else path
        self._record(RecordedRequest(scenario_id, dialect.name, "POST", full_path, headers, body))
        scenario = self.scenario(scenario_id)
        if scenario.kind is Kind.ERROR:
            reply = dialect.error(scenario.status, scenario.message, scenario.retry_after)
            handler.send_error_reply(reply)
            return
        call = Call(
            scenario=scenario,
            model=route.model or str(body.get("model") or "simulated-model"),
            body=body,
            stream=route.stream if route.stream is not None else bool(body.get("stream")),
        )
        answer = next_reply(scenario, dialect.tool_results(body))
        if not call.stream:
            if scenario.kind is Kind.HANG:
                self._stall(handler)
                handler.close_connection = True
                return
            if scenario.kind is Kind.FAILED:
                # Claude Code retries a failed stream once without streaming: fail that too
                handler.send_error_reply(dialect.error(500, scenario.message, None))
                return
            self._stopping.wait(scenario.delay)
            handler.send_json(200, dialect.document(answer, call))
            return
        handler.stream(self._paced(handler, dialect, call, dialect.events(answer, call)))

    def _stall(self, handler: _Handler) -> None:
        """Hang until stop(), or until the client hangs up (a killed CLI frees its thread)."""
        while not self._stopping.wait(0.2):
            if handler.client_gone():
                return

    def _paced(
        self, handler: _Handler, dialect: Dialect, call: Call, events: list[SseEvent]
    ) -> Iterator[SseEvent]:
        """The events to send, with the scenario's pauses, stall or failure woven in."""
        kind = call.scenario.kind
        for number, event in enumerate(events):
            if number == _EVENTS_BEFORE_TROUBLE and kind is Kind.HANG:
                self._stall(handler)
                return
            if number == _EVENTS_BEFORE_TROUBLE and kind is Kind.FAILED:
                yield dialect.failure(call)
                return
            if number and call.scenario.delay and self._stopping.wait(call.scenario.delay):
                return
            yield event


def _split_scenario(target: str) -> tuple[str, str]:
    match = _SCENARIO_PREFIX.fullmatch(target)
    if match is None:
        return "", target
    return match["id"], match["rest"] or "/"


def _find_dialect(path: str) -> tuple[Dialect, Route] | None:
    for dialect in DIALECTS:
        route = dialect.route(path)
        if route is not None:
            return dialect, route
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() joins the handlers itself, with a deadline
    request_queue_size = 128  # a fleet of CLIs connects at once

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], provider: SimulatedProvider
    ) -> None:
        self.provider = provider
        self._slots = threading.BoundedSemaphore(provider.max_connections)
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # full: answer without a thread, so idle connections cannot exhaust threads
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def opened(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open[sock] = threading.current_thread()

    def closed(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.pop(sock, None)

    def connection_count(self) -> int:
        with self._open_lock:
            return len(self._open)

    def close_connections(self) -> None:
        """Unblock every handler: idle keep-alive reads and writes to a stalled client."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # the client may already have gone
                sock.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        with self._open_lock:
            threads = list(self._open.values())
        for thread in threads:
            thread.join(timeout / max(len(threads), 1))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a CLI that hangs up mid-stream (killed, timed out) is routine, not a server error
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as the CLIs expect
    server: _Server
    server_version = "corral-provider/1"

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def do_POST(self) -> None:
        try:
            self.server.provider._serve(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        self.send_json(404, {"error": {"message": f"simulated: no API at {self.path}"}})

    def log_message(self, format: str, *args: Any) -> None:
        return  # tests and `provider serve` print their own summary; stderr stays quiet

    def read_body(self, limit: int) -> bytes | None:
        """The request's body, or None when it is longer than `limit` (not read whole)."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            total = 0
            for chunk in self._chunks(limit):
                total += len(chunk)
                if total > limit:
                    return None
                parts.append(chunk)
            return b"".join(parts)
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return None
        return self.rfile.read(max(length, 0))

    def _chunks(self, limit: int) -> Iterator[bytes]:
        while size := int(self.rfile.readline(64).split(b";")[0].strip() or b"0", 16):
            yield self.rfile.read(min(size, limit + 1))
            self.rfile.readline(64)
        self.rfile.readline(64)  # the blank line after the last chunk

    def send_json(
        self, status: int, body: JsonObject, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_error_reply(self, reply: ErrorReply) -> None:
        self.send_json(reply.status, reply.body, reply.headers)

    def client_gone(self) -> bool:
        """Whether the client closed its end (readable with nothing to read)."""
        sock: socket.socket = self.connection
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def stream(self, events: Iterator[SseEvent]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for event in events:
            data = event.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if self.server.provider.stopping:
            # a stream cut short by stop() must not look complete to the client
            self.close_connection = True
        else:
            self.wfile.write(b"0\r\n\r\n")
