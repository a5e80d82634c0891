"""One JSON error shape for every failure: `{"error": {"code": ..., "message": ...}}`.

Hierarchy (catch at the level you need):

    ApiError
    ├── UnknownItems    422  (valid JSON naming items the catalog lacks)
    ├── InvalidRequest  422  (valid JSON the schema cannot judge: bounds, unknown parameters)
    ├── NotFound        404
    ├── Conflict        409
    ├── Unauthorized    401
    ├── Unavailable     503
    └── Rejected        its own (feedback events: 404 unknown exposure, 409 voucher used, 422)
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

_FASTAPI_BODY_ERROR = "There was an error parsing the body"


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ApiError):
    status = 404
    code = "not_found"


class UnknownItems(ApiError):
    status = 422
    code = "unknown_item"


class InvalidRequest(ApiError):
    status = 422
    code = "invalid_request"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Unavailable(ApiError):
    status = 503
    code = "unavailable"


class Rejected(ApiError):
    """A domain error that carries its own status and code (feedback events)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _describe(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "unreadable_body", 404: "not_found", 405: "method_not_allowed", 413: "too_large"
        }.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400 and message == _FASTAPI_BODY_ERROR:
            # FastAPI's words for a body it could not decode before parsing any JSON.
            message = "the body could not be read: send UTF-8 JSON; nothing was recorded"
        response = error_response(exc.status_code, code, message)
        # A 405 keeps its `Allow` header (the methods the path takes), as HTTP asks.
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return error_response(500, "internal_error", "internal error; see the service log")
