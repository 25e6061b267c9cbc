"""`corral serve` and `corral login`: start the server; store a server's token for the CLI.

On SIGTERM (or Ctrl-C) the server stops taking runs, hands every committed event to the
live clients, closes their sockets with 4000 "reconnect", and exits; a second signal
makes uvicorn stop at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

from corral.server import require_server_extra
from corral.server.settings import (
    BATCH_WINDOW_S,
    CLIENT_QUEUE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    HEARTBEAT_S,
    MAX_BODY_BYTES,
    is_loopback,
)


def _warn(message: str) -> None:
    click.echo(f"corral serve: warning: {message}", err=True)


def _loud(host: str) -> None:
    bar = "!" * 78
    click.secho(
        f"{bar}\n"
        f"!! corral serve is listening on {host} WITHOUT TLS.\n"
        "!! The API token and every prompt and output cross the network in clear text.\n"
        "!! Give --tls-cert and --tls-key, or listen on 127.0.0.1 behind a TLS proxy.\n"
        f"{bar}",
        fg="red",
        bold=True,
        err=True,
    )


@click.command("serve")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port (0: any free one; the line 'listening on URL' says which).",
)
@click.option(
    "--store",
    "store_url",
    envvar="CORRAL_STORE",
    metavar="URL",
    help="History URL (default: SQLite in --dir/.corral). Env: CORRAL_STORE.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default="current directory",
    help="Where .corral lives: the history, run logs, and the token file.",
)
@click.option(
    "--token",
    envvar="CORRAL_SERVER_TOKEN",
    metavar="TOKEN",
    help="Accept this token instead of the stored one. Env: CORRAL_SERVER_TOKEN.",
)
@click.option("--new-token", is_flag=True, help="Replace the stored token with a new one.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--max-body",
    type=click.IntRange(min=1024),
    default=MAX_BODY_BYTES,
    show_default=True,
    help="Largest request body in bytes (a flow document); larger is 413.",
)
@click.option(
    "--client-queue",
    type=click.IntRange(min=1),
    default=CLIENT_QUEUE,
    show_default=True,
    help="Events a live client may fall behind before it is told to resync.",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0.05),
    default=HEARTBEAT_S,
    show_default=True,
    metavar="SECONDS",
    help="Send live clients a heartbeat after this long without events.",
)
@click.option(
    "--batch-window",
    type=click.FloatRange(min=0, max=1),
    default=BATCH_WINDOW_S,
    show_default=True,
    metavar="SECONDS",
    help="Live events that follow one another within this long share a batch=true "
    "WebSocket message (0: each sent as it comes).",
)
def serve_command(
    *,
    client_queue: int,
    heartbeat: float,
    batch_window: float,
    host: str,
    port: int,
    store_url: str | None,
    directory: Path,
    token: str | None,
    new_token: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    max_body: int,
) -> int:
    """Serve the history and run flows over an HTTP API with live events.

    Every API call needs the token: on first start a new one is printed once (its
    digest is kept in .corral/server-token.json, mode 0600); `corral login URL` stores
    it for the CLI.
    """
    require_server_extra()
    from corral.errors import UsageError
    from corral.server.app import create_app, token_folder
    from corral.server.auth import TokenBook, default_owner, load_or_create
    from corral.server.settings import ServerSettings

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    settings = ServerSettings(
        directory=directory,
        store=store_url,
        host=host,
        port=port,
        token=token,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_body=max_body,
        client_queue=client_queue,
        heartbeat_s=heartbeat,
        batch_window_s=batch_window,
    )
    if not is_loopback(host) and not settings.tls:
        _loud(host)
    if token:
        book = TokenBook.given(token, default_owner())
    else:
        setup = load_or_create(token_folder(settings), renew=new_token)
        book = setup.book
        if setup.created is not None:
            click.echo(
                "corral serve: a new API token (shown once, only its digest is kept in "
                f"{setup.path}):\n\n    {setup.created}\n\n"
                "Store it for the CLI with: corral login URL",
                err=True,
            )
    app = create_app(settings, tokens=book, warn=_warn)
    return run_server(app, settings)


def run_server(app: Any, settings: Any) -> int:
    import uvicorn

    from corral.server.frames import protocol_class

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
        ws_ping_interval=settings.heartbeat_s,
        ws_ping_timeout=settings.heartbeat_s * 2,
        # frames are small JSON and every client would get its own compressor: with 20
        # clients, deflate was a tenth of the server's busy time in a profile, for little gain
        ws_per_message_deflate=False,
        # uvicorn's websockets protocol, plus a send of a frame made once for every
        # client of a run (`corral.server.frames`; needs the deflate off above)
        ws=protocol_class(),
    )
    server = GracefulServer(config, app)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(server.serve())
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (`uvicorn[standard]`, the server extra,
    brings it on Linux and macOS): its loop and socket writes cost the server less CPU
    per message sent than asyncio's; else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # another platform: asyncio's loop
        return None
    return uvloop.new_event_loop


class GracefulServer:
    """uvicorn's server, with the drain (`corral.server.app.drain`) before its shutdown."""

    def __new__(cls, config: Any, app: Any) -> Any:
        import uvicorn

        class _Server(uvicorn.Server):
            _loop: asyncio.AbstractEventLoop | None = None
            _draining = False

            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets)
                self._loop = asyncio.get_running_loop()
                for server in self.servers:
                    for sock in server.sockets:
                        name = sock.getsockname()
                        scheme = "https" if self.config.ssl_certfile else "http"
                        host = f"[{name[0]}]" if ":" in name[0] else name[0]
                        click.echo(
                            f"corral serve: listening on {scheme}://{host}:{name[1]}", err=True
                        )
                        sys.stderr.flush()

            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                if self._draining or self._loop is None:
                    super().handle_exit(sig, frame)
                    return
                self._draining = True
                name = signal.Signals(sig).name
                click.echo(f"corral serve: {name}: draining live clients, then exiting", err=True)
                self._loop.call_soon_threadsafe(self._drain_then_exit, sig, frame)

            def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
                from corral.server.app import drain

                task = asyncio.ensure_future(drain(app))
                task.add_done_callback(lambda _: self._exit(sig, frame))

            def _exit(self, sig: int, frame: FrameType | None) -> None:
                uvicorn.Server.handle_exit(self, sig, frame)
                # a drained stop is a clean exit (0), not death by the signal uvicorn
                # would raise again once it is done
                self._captured_signals.clear()

        return _Server(config)


@click.command("login")
@click.argument("url")
@click.option(
    "--token",
    envvar="CORRAL_TOKEN",
    metavar="TOKEN",
    help="The token `corral serve` printed (default: asked for, not echoed).",
)
def login_command(url: str, token: str | None) -> int:
    """Check TOKEN against the server at URL and store it for `--server URL`.

    Stored in ~/.config/corral/credentials.json (mode 0600).
    """
    require_server_extra()
    from corral.server.client import Server, normal_url, save_token

    if not token:
        token = click.prompt("Token", hide_input=True).strip()
    with Server(url, token) as server:
        who = server.get("/session")
    path = save_token(url, token)
    click.echo(f"logged in to {normal_url(url)} as {who['owner']}; token stored in {path}")
    return 0
