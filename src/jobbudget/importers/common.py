"""What the trace importers share: options, the skipped-line record and helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from ..domain.cost import JobMetrics
from ..domain.errors import ValidationError
from ..domain.validation import (
    MAX_DIGITS,
    MAX_JOB_ID_LEN,
    MAX_QUEUE_LEN,
    MAX_TENANT_LEN,
    MAX_USAGE,
    check_identifier,
)
from ..ingest import LineError, ParsedJob

__all__ = ["TENANT_SOURCES", "ImportItem", "Skipped", "check_choice", "guard", "make_metrics"]

#: Where the tenant comes from (SWF has no account: ``account`` is an error there).
TENANT_SOURCES = ("user", "group", "account")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed record that is not a finished job (never ran, still running, ...).
    Skipped lines are counted, not rejected: they do not change the exit status."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: skipped, {self.reason}"


ImportItem = ParsedJob | LineError | Skipped


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValidationError(field, value, f"must be one of {', '.join(allowed)}")
    return value


def guard(number: int, exc: Exception) -> LineError:
    """A line error for anything a parser raised while reading one line."""
    if isinstance(exc, ValidationError):
        return LineError(number, str(exc), exc.field)
    return LineError(number, f"could not be read ({type(exc).__name__}: {exc})")


_new = object.__new__
_set = object.__setattr__
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 12, 31, tzinfo=UTC)


def _usage(name: str, value: Decimal, few_digits: bool) -> Decimal:
    if not ZERO <= value <= MAX_USAGE:
        raise ValidationError(name, value, f"must be between 0 and {MAX_USAGE}")
    if not few_digits and len(value.as_tuple().digits) > MAX_DIGITS:
        raise ValidationError(name, value, f"has more than {MAX_DIGITS} significant digits")
    return value + 0  # -0 becomes 0


_CHECKED: set[tuple[str, str]] = set()  # (field, value) already known to be good identifiers


def _identifier(field: str, value: str, max_len: int) -> None:
    if (field, value) not in _CHECKED:
        check_identifier(field, value, max_len=max_len)
        if len(_CHECKED) < 100_000:
            _CHECKED.add((field, value))


def make_metrics(
    job_id: str,
    tenant_id: str,
    queue_name: str,
    cpu_time: Decimal,
    memory_mb_seconds: Decimal,
    timestamp: datetime,
    *,
    few_digits: bool = False,
) -> JobMetrics:
    """``JobMetrics(...)`` for an importer's own figures (aware UTC ``timestamp``,
    ``Decimal`` usage, zero payload/Redis/network), checked as the constructor checks
    them but faster (importing is bound by this call; the tests check that both give
    equal records and reject the same values).  ``few_digits``: the caller knows both
    figures have at most ``MAX_DIGITS`` significant digits once they are at most
    ``MAX_USAGE`` (an integer, or an integer divided by 1024 or 1048576)."""
    if len(job_id) > MAX_JOB_ID_LEN or not job_id.isprintable() or job_id != job_id.strip() or not job_id:
        check_identifier("job_id", job_id, max_len=MAX_JOB_ID_LEN)
    _identifier("tenant_id", tenant_id, MAX_TENANT_LEN)
    _identifier("queue_name", queue_name, MAX_QUEUE_LEN)
    if not _EPOCH <= timestamp <= _LATEST:
        raise ValidationError("timestamp", timestamp.isoformat(), "must be between 1970 and 9000")
    cpu_time = _usage("cpu_time", cpu_time, few_digits)
    memory_mb_seconds = _usage("memory_mb_seconds", memory_mb_seconds, few_digits)
    metrics: JobMetrics = _new(JobMetrics)
    _set(metrics, "job_id", job_id)
    _set(metrics, "tenant_id", tenant_id)
    _set(metrics, "queue_name", queue_name)
    _set(metrics, "cpu_time", cpu_time)
    _set(metrics, "memory_mb_seconds", memory_mb_seconds)
    _set(metrics, "payload_bytes", ZERO)
    _set(metrics, "redis_ops", ZERO)
    _set(metrics, "network_bytes", ZERO)
    _set(metrics, "job_type", "")
    _set(metrics, "priority", 5)
    _set(metrics, "timestamp", timestamp)
    return metrics
