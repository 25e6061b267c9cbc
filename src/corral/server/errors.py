"""The API's one error shape: `{"error": {"code", "message", ...extra}}` with its status.

400 bad_request (and after_beyond_end), 401 unauthorized, 404 not_found, 409 conflict,
413 too_large, 422 invalid_flow (with `errors`: every problem, as `corral validate` says
it), 503 unavailable (a server shutting down). A bug is a 500 internal with no detail.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.errors import CorralError, FlowError, NotFoundError, Problem, StoreError


class ApiError(Exception):
    """An error the client can fix, with its HTTP status and code."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "a valid token is needed: send 'Authorization: Bearer TOKEN' (see `corral login`)",
    )


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "message": str(problem),
        "line": problem.line,
        "col": problem.column,
        "path": problem.path,
    }


def from_corral(error: CorralError) -> ApiError:
    """The API error for a corral error (what the CLI would print, as JSON)."""
    if isinstance(error, FlowError):
        return ApiError(
            422,
            "invalid_flow",
            error.lines()[0],
            errors=[problem_dict(p) for p in error.problems],
        )
    if isinstance(error, NotFoundError):
        return ApiError(404, "not_found", " ".join(error.lines()))
    if isinstance(error, StoreError):
        return ApiError(503, "store_unavailable", " ".join(error.lines()))
    return ApiError(400, "bad_request", " ".join(error.lines()))


def install(app: FastAPI) -> None:
    """Every error the app raises answers in the one shape."""

    async def api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return error.response()

    async def corral_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, CorralError)
        return from_corral(error).response()

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        code = codes.get(error.status_code, "bad_request")
        return ApiError(error.status_code, code, str(error.detail)).response()

    async def invalid_request(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return ApiError(400, "bad_request", message).response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(CorralError, corral_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
