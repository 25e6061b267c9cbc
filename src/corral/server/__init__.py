"""`corral serve`: the history and the runner behind a versioned HTTP API with live events.

Needs the `server` extra (FastAPI, uvicorn, httpx, websockets); `require_server_extra`
names the install command when it is missing.
"""

from __future__ import annotations

from corral.errors import MissingExtraError

INSTALL_HINT = "pip install 'corral[server]'"


def require_server_extra() -> None:
    """Raise MissingExtraError (exit 2 at the CLI) unless the server extra is installed."""
    import importlib.util

    missing = [
        name
        for name in ("fastapi", "uvicorn", "httpx", "websockets")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        error = MissingExtraError(
            f"the server needs {', '.join(missing)}, which is not installed",
            hint=f"install it with: {INSTALL_HINT}",
        )
        error.exit_code = 2
        raise error
