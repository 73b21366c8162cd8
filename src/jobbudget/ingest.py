"""Pure parsers for job-metrics files: JSON Lines, CSV and SWF (job traces).

Each parser takes the file's lines and yields, per record, either a
:class:`ParsedJob` or a :class:`LineError` with the 1-based line number and the
field/value message of the :class:`~jobbudget.domain.errors.ValidationError`.
Numbers are read exactly (``Decimal``), never through ``float``.

Records have the :class:`~jobbudget.domain.cost.JobMetrics` fields: ``job_id``,
``tenant_id``, ``queue_name``, ``cpu_time``, ``memory_mb_seconds``,
``payload_bytes``, ``redis_ops``, ``network_bytes`` (required) and ``job_type``,
``priority`` (whole number 0-10), ``timestamp`` (ISO-8601 with a UTC offset) (optional).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .domain.cost import JobMetrics
from .domain.errors import ValidationError
from .domain.money import EXACT, parse_decimal

__all__ = [
    "FIELDS",
    "NUMBER_FIELDS",
    "REQUIRED_FIELDS",
    "LineError",
    "ParsedJob",
    "SwfJob",
    "metrics_from_mapping",
    "parse_csv",
    "parse_jsonl",
    "parse_swf",
]

NUMBER_FIELDS = ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes")
REQUIRED_FIELDS = ("job_id", "tenant_id", "queue_name", *NUMBER_FIELDS)
OPTIONAL_FIELDS = ("job_type", "priority", "timestamp")
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_MB = Decimal(1048576)


@dataclass(frozen=True, slots=True)
class ParsedJob:
    """A valid record and the line it was read from."""

    line: int
    metrics: JobMetrics


@dataclass(frozen=True, slots=True)
class LineError:
    """A rejected record: its line, the field at fault (if known) and why."""

    line: int
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


Parsed = ParsedJob | LineError


def _error(line: int, exc: ValidationError) -> LineError:
    return LineError(line, str(exc), exc.field)


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("timestamp", value, "must be an ISO-8601 date-time string such as 2024-01-15T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError("timestamp", value, "is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError("timestamp", value, "must include a UTC offset such as Z or +02:00")
    return parsed


def metrics_from_mapping(data: Any) -> JobMetrics:
    """Build validated metrics from a decoded record (JSON types: str, int, Decimal).

    Raises :class:`ValidationError` naming the first wrong field: an unknown or
    missing key, a number given as text or a boolean, a naive timestamp, ...
    """
    if not isinstance(data, dict):
        raise ValidationError("record", type(data).__name__, "must be a JSON object")
    for key in data:
        if key not in FIELDS:
            raise ValidationError(str(key), data[key], "unknown field")
    for key in REQUIRED_FIELDS:
        if key not in data or data[key] is None:
            raise ValidationError(key, None, "is required")
    for key in NUMBER_FIELDS:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise ValidationError(key, value, "must be a JSON number")
    priority = data.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise ValidationError("priority", priority, "must be a whole number from 0 to 10")
    job_type = data.get("job_type")
    return JobMetrics(
        job_id=data["job_id"],
        tenant_id=data["tenant_id"],
        queue_name=data["queue_name"],
        cpu_time=data["cpu_time"],
        memory_mb_seconds=data["memory_mb_seconds"],
        payload_bytes=data["payload_bytes"],
        redis_ops=data["redis_ops"],
        network_bytes=data["network_bytes"],
        job_type="" if job_type is None else job_type,
        priority=5 if priority is None else priority,
        timestamp=_timestamp(data.get("timestamp")),
    )


def _no_constant(name: str) -> Any:
    raise ValidationError("record", name, "NaN and Infinity are not numbers")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValidationError(key, value, "appears twice in the record")
        out[key] = value
    return out


def parse_jsonl(lines: Iterable[str]) -> Iterator[Parsed]:
    """One JSON object per line; blank lines are skipped."""
    for number, raw in enumerate(lines, start=1):
        text = raw.lstrip("\ufeff") if number == 1 else raw
        if not text.strip():
            continue
        try:
            yield ParsedJob(number, metrics_from_mapping(_loads(text)))
        except ValidationError as exc:
            yield _error(number, exc)
        except json.JSONDecodeError as exc:
            yield LineError(number, f"not valid JSON: {exc.msg} at column {exc.colno}")
        except RecursionError:
            yield LineError(number, "record: not valid JSON: nested too deeply", "record")


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        if isinstance(exc, (ValidationError, json.JSONDecodeError)):
            raise
        # An integer over Python's digit limit for int(): read it as a Decimal so the
        # field's own check rejects it by name (the fast path above stays int-based).
        return json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )


def _csv_number(field: str, text: str) -> Decimal:
    try:
        return parse_decimal(text)
    except (TypeError, ValueError):
        raise ValidationError(field, text, "must be a number") from None


def _csv_record(header: list[str], row: list[str]) -> JobMetrics:
    if len(row) != len(header):
        raise ValidationError("row", len(row), f"must have {len(header)} columns like the header")
    cells = dict(zip(header, row, strict=True))
    data: dict[str, Any] = {}
    for key, text in cells.items():
        if key in NUMBER_FIELDS:
            if not text.strip():
                raise ValidationError(key, text, "is required")
            data[key] = _csv_number(key, text)
        elif key == "priority":
            if text.strip():
                if not _INTEGER.match(text.strip()) or len(text.strip()) > 20:
                    raise ValidationError("priority", text, "must be a whole number from 0 to 10")
                data[key] = int(text)
        elif key == "timestamp":
            data[key] = text.strip() or None
        else:
            data[key] = text
    return metrics_from_mapping(data)


def parse_csv(lines: Iterable[str]) -> Iterator[Parsed]:
    """A header row naming the fields, then one job per row; blank rows are skipped.
    A bad header is reported on line 1 and nothing else is read."""
    reader = csv.reader(lines)
    header: list[str] | None = None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield LineError(reader.line_num, f"not valid CSV ({exc}); the rest of the file was not read")
            return
        if header is None:
            if not any(cell.strip() for cell in row):
                continue
            header = [cell.strip().lstrip("\ufeff").strip() for cell in row]
            problem = _check_header(header)
            if problem is not None:
                yield LineError(reader.line_num, str(problem), problem.field)
                return
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            yield ParsedJob(reader.line_num, _csv_record(header, row))
        except ValidationError as exc:
            yield _error(reader.line_num, exc)


def _check_header(header: list[str]) -> ValidationError | None:
    seen: set[str] = set()
    for name in header:
        if name not in FIELDS:
            return ValidationError(name, name, "unknown column in the header")
        if name in seen:
            return ValidationError(name, name, "appears twice in the header")
        seen.add(name)
    for name in REQUIRED_FIELDS:
        if name not in seen:
            return ValidationError(name, None, "required column missing from the header")
    return None


# -- SWF (Standard Workload Format) job traces ----------------------------------


@dataclass(frozen=True, slots=True)
class SwfJob:
    """A job of a workload trace: when it was submitted and what it used (its
    ``metrics.timestamp`` is when it finished)."""

    line: int
    submitted: datetime
    metrics: JobMetrics


def parse_swf(lines: Iterable[str], *, prefix: str = "swf") -> Iterator[SwfJob | LineError]:
    """Read a Standard Workload Format trace (Parallel Workloads Archive).

    Mapping: job id ``<prefix>-<field 1>``, tenant ``user-<field 12>``, queue the
    queue name (field 20 of extended traces such as MetaCentrum's) or
    ``queue-<field 15>``, CPU seconds = run time × allocated processors (fields
    4, 5), memory MB·s = requested memory (field 10: bytes in extended traces,
    KB in standard ones) × run time, finished at submit + wait + run time.
    Standard traces give times relative to the header's ``UnixStartTime``.
    Jobs with an unknown (-1) or negative run time or processor count are
    skipped silently: they never ran.
    """
    start = 0
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith(";"):
            key, _, value = text[1:].partition(":")
            if key.strip() == "UnixStartTime":
                try:
                    start = int(value.strip())
                except ValueError:
                    yield LineError(number, f"UnixStartTime: not a whole number (got {value.strip()!r})")
            continue
        fields = text.split()
        try:
            job = _swf_job(number, fields, start, prefix)
        except ValidationError as exc:
            yield _error(number, exc)
            continue
        if job is not None:
            yield job


def _swf_int(fields: list[str], index: int, name: str) -> int:
    try:
        return int(fields[index - 1])
    except ValueError:
        try:
            number = Decimal(fields[index - 1])
            if number.adjusted() < 30:  # 1e99999999 would build a huge int (and hang)
                return int(number)
        except (ArithmeticError, ValueError):
            pass
        raise ValidationError(name, fields[index - 1], f"field {index} must be a number") from None


def _swf_job(number: int, fields: list[str], start: int, prefix: str) -> SwfJob | None:
    if len(fields) < 18:
        raise ValidationError("record", len(fields), "an SWF line has at least 18 fields")
    run = _swf_int(fields, 4, "run_time")
    procs = _swf_int(fields, 5, "allocated_processors")
    if run < 0 or procs < 0:
        return None
    extended = len(fields) >= 20
    submit = _swf_int(fields, 2, "submit_time") + (0 if extended else start)
    wait = max(_swf_int(fields, 3, "wait_time"), 0)
    memory = max(_swf_int(fields, 10, "requested_memory"), 0)
    memory_bytes = memory if extended else memory * 1024
    queue = fields[19] if extended else f"queue-{fields[14]}"
    submitted = datetime.fromtimestamp(submit, UTC)
    metrics = JobMetrics(
        job_id=f"{prefix}-{fields[0]}",
        tenant_id=f"user-{fields[11]}",
        queue_name=queue,
        cpu_time=Decimal(run * procs),
        memory_mb_seconds=EXACT.divide(Decimal(memory_bytes * run), _MB),
        payload_bytes=Decimal(0),
        redis_ops=Decimal(0),
        network_bytes=Decimal(0),
        job_type=queue,
        timestamp=submitted + timedelta(seconds=wait + run),
    )
    return SwfJob(number, submitted, metrics)
