"""The browser dashboard: the static single-page app under `static/`, served at `/`.

The files hold no data (every figure comes from `/api/v1` after signing in), so they
need no token. Every response carries a strict Content-Security-Policy: scripts and
styles only from this origin, no inline script or style, no framing, no plugins, and
network access only back to this server (its JSON API and its WebSocket). App routes
(`/runs/ID`, `/usage`, ...) are drawn in the browser, so any path that is not a file
falls back to `index.html`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# the app's own pages, drawn by static/js/main.js from the path; named one by one so that
# the dashboard never shadows a route of the API or the health checks
APP_PAGES = ("/login", "/runs", "/runs/{rest:path}", "/usage", "/start")

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def static_root() -> Path:
    """Where the built dashboard lives inside the installed package."""
    return Path(__file__).resolve().parent / "static"


def _file(path: Path, *, cache: bool) -> FileResponse:
    headers = dict(SECURITY_HEADERS)
    # index.html must be fetched again after an upgrade; the assets it names may be cached
    # briefly (they are small and not fingerprinted, so not for long)
    headers["Cache-Control"] = "max-age=300" if cache else "no-cache"
    media = _MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, headers=headers)


def _index() -> FileResponse:
    return _file(static_root() / "index.html", cache=False)


router = APIRouter(include_in_schema=False)


@router.get("/assets/{name:path}")
async def asset(name: str) -> Response:
    """A file of the dashboard (script, style sheet, icon); never outside `static/`."""
    root = static_root().resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file() or path.name == "index.html":
        raise HTTPException(status_code=404)
    return _file(path, cache=True)


@router.get("/")
async def index() -> Response:
    """The dashboard's one page."""
    return _index()


async def app_page() -> Response:
    """A page of the app (`/runs/ID/jobs/NAME`, `/usage`...): the same page, drawn in JS."""
    return _index()


for _page in APP_PAGES:
    router.add_api_route(_page, app_page, methods=["GET"])
