"""Errors as JSON ``{"error": {"code", "message", "field"}}`` with stable codes, the
request body size limit, and the handlers that make sure no input produces a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..domain.errors import (
    AuthenticationError,
    BudgetError,
    ConflictError,
    EnforcementError,
    JobBudgetError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    StorageFullError,
    StorageReadOnlyError,
    UnsupportedMediaTypeError,
    ValidationError,
    error_code,
    is_retryable,
)
from .schemas import UNION_TAGS

__all__ = ["BodyLimitMiddleware", "error_body", "install_error_handlers"]

log = logging.getLogger("jobbudget.api")
RETRY_AFTER_SECONDS = "5"
_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
    429: "RATE_LIMITED",
    503: "UNAVAILABLE",
}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def _json(status: int, code: str, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers or None)


def _status_of(exc: BaseException) -> int:
    from ..notify.base import DeliveryError

    cause = exc.err if isinstance(exc, BudgetError) else exc
    if isinstance(cause, DeliveryError):
        return 502  # the receiver failed, not this service; the reason is safe to show
    if isinstance(cause, ValidationError):
        return 422
    if isinstance(cause, AuthenticationError):
        return 401
    if isinstance(cause, PermissionDeniedError):
        return 403
    if isinstance(cause, NotFoundError):
        return 404
    if isinstance(cause, UnsupportedMediaTypeError):
        return 415
    if isinstance(cause, (ConflictError, EnforcementError)):
        return 409
    if isinstance(cause, RateLimitedError):
        return 429
    if is_retryable(exc) or isinstance(cause, StorageFullError | StorageReadOnlyError):
        # a full or read-only database needs an operator, but nothing was stored and the
        # same request succeeds once it is fixed: a client that retries loses nothing
        return 503
    return 500


#: what a client may be told (the driver's own text stays in the log)
_STORAGE_MESSAGES: dict[type[BaseException], str] = {
    StorageFullError: "the database is full: nothing was stored; retry once space is freed",
    StorageReadOnlyError: "the database is read-only: nothing was stored; retry once it is writable",
}


def jobbudget_error_response(exc: JobBudgetError) -> JSONResponse:
    status = _status_of(exc)
    cause = exc.err if isinstance(exc, BudgetError) else exc
    field = cause.field if isinstance(cause, ValidationError) else None
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    if isinstance(cause, RateLimitedError):
        headers["Retry-After"] = str(cause.retry_after)
    if status == 502:
        return _json(status, error_code(exc), str(exc), None)
    if status >= 500:
        log.error("request failed: %s", exc)
        message = _STORAGE_MESSAGES.get(
            type(cause), "the service cannot complete this request now" if status == 503 else "internal error"
        )
        return _json(status, error_code(exc), message, None, **headers)
    return _json(status, error_code(exc), str(exc), field, **headers)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    if len(parts) > 1 and parts[0] in UNION_TAGS:  # the branch of POST /v1/jobs' body
        parts = parts[1:]
    return ".".join(parts)


def _said(error: Mapping[str, Any]) -> str:
    """Pydantic's message in the words the rest of the API uses, for the commonest
    kinds (too long, missing, not a number); its own words otherwise."""
    kind = str(error.get("type", ""))
    context = error.get("ctx")
    value = error.get("input")
    if kind == "too_long" and isinstance(context, dict) and "max_length" in context:
        unit = "characters" if isinstance(value, str) else "items"
        return f"must be at most {context['max_length']} {unit} (got {context.get('actual_length', '?')})"
    if kind == "missing":
        return "is required"
    if kind.startswith("decimal") and isinstance(value, str | int | float):
        shown = str(value) if len(str(value)) <= 40 else str(value)[:40] + "..."
        return f"must be a decimal number such as 12.50 (got '{shown}')"
    return str(error.get("msg", "invalid"))


def _negotiated(request: Request, response: JSONResponse) -> Response:
    """The error as ``key=value`` lines for a client that reads only plain text (Slurm's
    ``job_submit.lua``: ``Accept: text/plain`` without JSON), else as JSON."""
    accept = request.headers.get("accept", "")
    if "text/plain" not in accept or "json" in accept:
        return response
    error = json.loads(bytes(response.body))["error"]
    lines = "".join(f"{k}={' '.join(str(error[k] or '').split())}\n" for k in ("code", "field", "message"))
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
    return PlainTextResponse(lines, status_code=response.status_code, headers=headers)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    return _negotiated(request, _validation_json(exc))


def _validation_json(exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    if first.get("type") == "json_invalid":  # where it broke is a character offset, not a field
        context = first.get("ctx")
        reason = (str(context.get("error") or "") if isinstance(context, dict) else "") or "it cannot be parsed"
        return _json(400, "INVALID_JSON", f"the request body is not valid JSON: {reason}", None)
    field = _field(first.get("loc", ()))
    extra = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return _json(422, "VALIDATION_FAILED", f"{field}: {_said(first)}{extra}", field or None)


async def _domain_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JobBudgetError)
    return _negotiated(request, jobbudget_error_response(exc))


async def _http_handler(request: Request, exc: Exception) -> Response:
    return _negotiated(request, _http_json(exc))


def _http_json(exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
    return _json(exc.status_code, code, detail, None, **headers)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _json(500, "INTERNAL", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(JobBudgetError, _domain_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


class BodyTooLargeError(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413: by Content-Length up front, and by
    counting the streamed bytes (chunked requests, lying Content-Length)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0:
                    await _json(400, "BAD_REQUEST", "invalid Content-Length")(scope, receive, send)
                    return
                if length > self.max_bytes:
                    too_large = BodyTooLargeError(self.max_bytes)
                    await _json(413, "PAYLOAD_TOO_LARGE", str(too_large.detail))(scope, receive, send)
                    return
        received = 0
        limit = self.max_bytes

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, limited, send)
