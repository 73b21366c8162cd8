"""The error responses operations declare in the OpenAPI schema: the statuses the
server really answers, each with the body it really sends (:class:`ErrorOut`)."""

from __future__ import annotations

from typing import Any

from .errors import RETRY_AFTER_SECONDS
from .schemas import ErrorOut

__all__ = ["LOOKUP", "MEANINGS", "WITH_BODY", "WRITE", "errors"]

#: What each error status means in this API (the response descriptions).
MEANINGS: dict[int, str] = {
    400: "The body is not JSON (`INVALID_JSON`), or the `Content-Length` is invalid (`BAD_REQUEST`)",
    401: "No API key, or an unknown, malformed or revoked one (`UNAUTHENTICATED`)",
    403: "The key's role may not do this (`FORBIDDEN`)",
    404: "Unknown, or another tenant's (`BUDGET_NOT_FOUND`, `TENANT_NOT_FOUND`, ...)",
    409: "The write conflicts with stored data (`CONFLICT`)",
    413: "The body is over the size limit (`PAYLOAD_TOO_LARGE`)",
    415: "The body is not sent as JSON: send `Content-Type: application/json` (`UNSUPPORTED_MEDIA_TYPE`)",
    422: "A value is out of range or malformed (`VALIDATION_FAILED`; `field` names it)",
    429: "Too many of these requests for this API key or budget in the last minute (`RATE_LIMITED`)",
    502: "The notification could not be delivered (`DELIVERY_FAILED`; with an admin key the reason, "
    "and `TARGET_NOT_ALLOWED` when the outbound policy refused the target's address)",
    503: "The database cannot answer now, or is full or read-only; nothing was stored "
    "(`STORAGE_UNAVAILABLE`, `STORAGE_FULL`, `STORAGE_READ_ONLY`, ...)",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds until the next request is allowed", "schema": {"type": "integer"}}},
    503: {
        "Retry-After": {
            "description": f"Seconds to wait before retrying ({RETRY_AFTER_SECONDS})",
            "schema": {"type": "integer"},
        }
    },
}
#: What an operation that reads a request body can also answer.
WITH_BODY = (400, 413, 415)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer these error statuses."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in sorted(statuses):
        declared[status] = {"model": ErrorOut, "description": MEANINGS[status]}
        if status in _HEADERS:
            declared[status]["headers"] = _HEADERS[status]
    return declared


#: A write with a body: not JSON or too large, not allowed, a conflict, a bad value.
WRITE = errors(*WITH_BODY, 403, 409, 422)
#: A read of one thing (a budget, a tenant's forecast...): unknown, or a bad parameter.
LOOKUP = errors(404, 422)
