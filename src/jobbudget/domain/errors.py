"""Structured errors with stable codes.

Two families, as in the design document: :class:`BudgetError` wraps a failed
operation with the tenant it concerned, :class:`EnforcementError` reports a
refused admission with the numbers behind it.  The others are the concrete
causes that ``BudgetError.err`` may carry, and can be raised on their own.

``error_code`` gives a stable string for logs and HTTP bodies;
``is_retryable`` and ``is_permanent`` tell callers whether trying again can help.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "AuthenticationError",
    "BudgetError",
    "ConflictError",
    "EnforcementError",
    "JobBudgetError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "StorageError",
    "StorageFullError",
    "StorageReadOnlyError",
    "StorageUnavailableError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "error_code",
    "is_permanent",
    "is_retryable",
]


class JobBudgetError(Exception):
    """Base class of every error raised by jobbudget."""

    code: str = "INTERNAL"
    retryable: bool = False


class ValidationError(JobBudgetError, ValueError):
    """Input was rejected; ``field`` names it and ``value`` is what was given."""

    code = "VALIDATION_FAILED"

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        given = "" if value is None else f" (got {_short(value)})"  # "is required (got nothing)" says it twice
        super().__init__(f"{field}: {reason}{given}")


class NotFoundError(JobBudgetError, LookupError):
    """A named thing (budget, tenant, cost model, ...) does not exist."""

    def __init__(self, kind: str, key: str, hint: str = "") -> None:
        self.kind = kind
        self.key = key
        self.code = f"{kind.upper().replace(' ', '_')}_NOT_FOUND"
        super().__init__(f"{kind} not found: {_short(key)}" + (f"; {hint}" if hint else ""))


class ConflictError(JobBudgetError):
    """The request contradicts what is stored (duplicate id, stale update)."""

    code = "CONFLICT"


class AuthenticationError(JobBudgetError):
    """No API key was given, or it is malformed, unknown or revoked.  The message
    never contains the key."""

    code = "UNAUTHENTICATED"


class PermissionDeniedError(JobBudgetError):
    """The API key is valid but its role may not do this (to this tenant)."""

    code = "FORBIDDEN"


class UnsupportedMediaTypeError(JobBudgetError):
    """A request body in a format the endpoint does not take (HTTP 415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"


class RateLimitedError(JobBudgetError):
    """Too many requests of one kind in a short time (per API key, or per thing);
    ``retry_after``: whole seconds until one more is allowed."""

    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, message: str, *, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class StorageUnavailableError(JobBudgetError):
    """The database could not be reached; trying again later may succeed."""

    code = "STORAGE_UNAVAILABLE"
    retryable = True


class StorageError(JobBudgetError):
    """The database refused for a reason retrying will not fix (read-only file,
    disk full, damaged schema)."""

    code = "STORAGE_ERROR"


class StorageFullError(StorageError):
    """The database's disk (or size limit) is full; the write was rolled back.  Not
    retryable: space must be freed first."""

    code = "STORAGE_FULL"


class StorageReadOnlyError(StorageError):
    """The database (file, file system or server) only allows reading; the write was
    rolled back.  Not retryable: it must be made writable first."""

    code = "STORAGE_READ_ONLY"


class BudgetError(JobBudgetError):
    """An operation failed for a tenant; ``err`` is the underlying cause."""

    def __init__(self, operation: str, tenant_id: str, err: BaseException) -> None:
        self.operation = operation
        self.tenant_id = tenant_id
        self.err = err
        # The code and retry advice are those of the underlying cause.
        self.code = error_code(err)
        self.retryable = is_retryable(err)
        super().__init__(f"budget operation {operation} failed for tenant {tenant_id!r}: {err}")


class EnforcementError(JobBudgetError):
    """A job was refused by budget enforcement."""

    code = "BUDGET_EXCEEDED"

    def __init__(
        self,
        *,
        action: str,
        current_spend: Decimal,
        budget_amount: Decimal,
        utilization: Decimal,
        message: str = "",
        budget_id: str | None = None,
    ) -> None:
        self.action = action
        self.current_spend = current_spend
        self.budget_amount = budget_amount
        self.utilization = utilization
        self.budget_id = budget_id
        super().__init__(
            message or f"budget enforcement {action}: {current_spend}/{budget_amount} ({utilization * 100:.1f}%)"
        )


def _short(value: Any, limit: int = 80) -> str:
    """``value`` in the user's words, not Python's: ``-5`` (not ``Decimal('-5')``),
    ``2026-11-01``, ``true``, ``nothing``; text keeps its quotes (and escapes, so a
    hidden control character shows)."""
    text = _shown(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() and abs(value.adjusted()) < 60 else str(value)
    if isinstance(value, (int, float)):
        return str(value) if isinstance(value, int) else repr(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            return type(value).__name__
    if isinstance(value, str):
        return repr(value)
    return type(value).__name__


def error_code(err: BaseException) -> str:
    """The stable code of ``err`` (``INTERNAL`` for errors not raised by jobbudget)."""
    if isinstance(err, JobBudgetError):
        return err.code
    return "INTERNAL"


def is_retryable(err: BaseException) -> bool:
    """True when the same call may succeed later (a lost database connection, say)."""
    if isinstance(err, JobBudgetError):
        return bool(err.retryable)
    return isinstance(err, (TimeoutError, ConnectionError))


def is_permanent(err: BaseException) -> bool:
    """True when trying again cannot help: the input or the state must change first."""
    return not is_retryable(err)
