"""The API's door: a bearer token or the browser's session cookie (plus the CSRF header
on a cookie's POST and DELETE). A refusal is a 401 that says how to authenticate and
nothing about the server."""

from __future__ import annotations

from fastapi import Request, Response

from corral.server.auth import CSRF_HEADER, SESSION_COOKIE, Principal, bearer
from corral.server.errors import ApiError, unauthorized
from corral.server.state import ServerState, state_of

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def principal(request: Request) -> Principal:
    """The caller, or 401 (FastAPI dependency of every /api/v1 route but the login)."""
    state = state_of(request)
    token = bearer(request.headers.get("authorization"))
    if token is not None:
        found = state.tokens.check(token)
        if found is None:
            state.rejected_auth += 1
            raise unauthorized()
        return found
    cookie = request.cookies.get(SESSION_COOKIE)
    found = state.tokens.check(cookie)
    if found is None:
        state.rejected_auth += 1
        raise unauthorized()
    if request.method in UNSAFE and request.headers.get(CSRF_HEADER) != "1":
        raise ApiError(
            403, "csrf", f"a cookie-authenticated {request.method} needs the {CSRF_HEADER} header"
        )
    return Principal(found.owner, via_cookie=True)


async def session_login(request: Request, state: ServerState) -> Response:
    try:
        body = await request.json()
        token = body.get("token") if isinstance(body, dict) else None
    except ValueError:
        token = None
    if not isinstance(token, str) or state.tokens.check(token) is None:
        state.rejected_auth += 1
        raise unauthorized()
    response = Response(status_code=204)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/",
        secure=state.settings.tls,
    )
    return response


def session_logout(state: ServerState) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=state.settings.tls
    )
    return response
