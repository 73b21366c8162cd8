"""What every parser yields, and the helpers they share.

Each parser takes a file's lines and yields, per record, a :class:`ParsedJob`, a
:class:`Skipped` (a well-formed record that is not a finished job) or a
:class:`LineError` (a record that cannot be read: its 1-based line, the field at
fault and why).  Numbers are read exactly (``Decimal``), never through ``float``;
every job is built by the :class:`~jobbudget.domain.cost.JobMetrics` constructor,
which checks it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.cost import JobMetrics
from ..domain.errors import ValidationError

__all__ = ["TENANT_SOURCES", "ImportItem", "LineError", "ParsedJob", "Skipped", "check_choice", "guard"]

#: Where the tenant comes from (SWF has no account: ``account`` is an error there).
TENANT_SOURCES = ("user", "group", "account")


@dataclass(frozen=True, slots=True)
class ParsedJob:
    """A valid record and the line it was read from; ``submitted`` is when the job
    was submitted, where the format says (SWF, sacct), for replaying a trace."""

    line: int
    metrics: JobMetrics
    submitted: datetime | None = None


@dataclass(frozen=True, slots=True)
class LineError:
    """A rejected record: its line, the field at fault (if known) and why."""

    line: int
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


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
