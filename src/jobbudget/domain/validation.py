"""Checks shared by every entry point: identifiers and non-negative exact numbers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from .errors import ValidationError
from .money import ZERO, to_decimal

__all__ = [
    "MAX_QUEUE_LEN",
    "MAX_TENANT_LEN",
    "MAX_USAGE",
    "MAX_ID_LEN",
    "check_aware",
    "check_identifier",
    "check_non_negative",
    "check_fraction",
    "known_identifier",
    "parse_instant",
    "remember_identifier",
    "usage_ok",
]

MAX_TENANT_LEN = 50
MAX_QUEUE_LEN = 100
MAX_JOB_ID_LEN = 200
MAX_JOB_TYPE_LEN = 100
#: Budget, alert and reservation ids (the service makes UUIDs; callers may name budgets).
MAX_ID_LEN = 100
#: Largest accepted usage figure (seconds, MB·s, bytes, operations): 1e18 covers
#: a million cores running for thirty years; anything above is a broken reporter.
MAX_USAGE = Decimal("1e18")
#: Inputs with more significant digits than this are rejected so arithmetic stays exact.
MAX_DIGITS = 40


def check_identifier(field: str, value: Any, *, max_len: int, allow_empty: bool = False) -> str:
    """Return ``value`` if it is a printable string of at most ``max_len`` characters."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a string")
    if not value:
        if allow_empty:
            return value
        raise ValidationError(field, value, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(field, value, f"must be at most {max_len} characters")
    if not value.isprintable():
        raise ValidationError(field, value, "must contain only printable characters")
    if value != value.strip():
        raise ValidationError(field, value, "must not start or end with white space")
    if "=?" in value:  # RFC 2047 encoded words: e-mail headers would decode them into text
        raise ValidationError(field, value, "must not contain '=?' (e-mail encoded-word syntax)")
    return value


#: Identifiers that passed :func:`check_identifier` (tenants and queues recur in every
#: job); bounded, so a stream of distinct names cannot grow it without limit.
_KNOWN: set[str] = set()
_KNOWN_MAX = 100_000


def known_identifier(value: object, max_len: int) -> bool:
    """True if ``value`` passed :func:`check_identifier` before and fits ``max_len``
    (a fast path; False means "check it", not "invalid")."""
    return type(value) is str and value in _KNOWN and len(value) <= max_len


def remember_identifier(value: str) -> str:
    if value and len(_KNOWN) < _KNOWN_MAX:
        _KNOWN.add(value)
    return value


def usage_ok(value: object) -> bool:
    """True if ``value`` is already what :func:`check_non_negative` would return (a
    positive, finite Decimal within :data:`MAX_USAGE` and :data:`MAX_DIGITS`)."""
    if value is ZERO:  # the usual zero of the fields a job does not report
        return True
    return (
        type(value) is Decimal
        and value.is_finite()
        and not value.is_signed()  # negatives and -0 (which the check turns into 0)
        and value <= MAX_USAGE
        and (value.is_zero() or len(value.as_tuple().digits) <= MAX_DIGITS)
    )


def check_non_negative(field: str, value: Any, *, maximum: Decimal = MAX_USAGE) -> Decimal:
    """Convert ``value`` exactly and check it is a finite number in ``[0, maximum]``."""
    try:
        number = to_decimal(value)
    except TypeError as exc:
        raise ValidationError(field, value, f"must be a number ({exc})") from None
    except ValueError as exc:
        raise ValidationError(field, value, f"must be a finite number ({exc})") from None
    if number < 0:
        raise ValidationError(field, value, "must not be negative")
    if number > maximum:
        raise ValidationError(field, value, f"must be at most {maximum:,f}")
    if len(number.as_tuple().digits) > MAX_DIGITS:
        raise ValidationError(field, value, f"has more than {MAX_DIGITS} significant digits")
    return number + 0 if number.is_zero() else number  # -0 becomes 0


def check_fraction(field: str, value: Any, *, low: Decimal, high: Decimal, low_inclusive: bool = False) -> Decimal:
    """A number in ``(low, high]`` (or ``[low, high]``), converted exactly."""
    number = check_non_negative(field, value, maximum=high)
    if number < low or (number == low and not low_inclusive):
        bound = "at least" if low_inclusive else "greater than"
        raise ValidationError(field, value, f"must be {bound} {low}")
    return number


def parse_instant(field: str, text: str) -> datetime:
    """An ISO-8601 date-time with a UTC offset (``2024-01-15T12:00:00Z``), as given."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, text, "must be an ISO-8601 date-time such as 2024-01-15T12:00:00Z") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(field, text, "must include a UTC offset such as Z or +02:00")
    return parsed


def check_aware(field: str, value: Any) -> datetime:
    """A timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise ValidationError(field, value, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, value, "must be timezone-aware (naive datetimes are ambiguous)")
    return value
