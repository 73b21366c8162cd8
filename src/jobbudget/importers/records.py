"""JSON Lines and CSV files of job metrics (what ``jobbudget ingest`` reads).

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
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..domain.cost import JobMetrics
from ..domain.errors import ValidationError
from ..domain.jsontext import loads_exact
from ..domain.money import parse_decimal
from ..domain.validation import parse_instant
from .common import LineError, ParsedJob

__all__ = [
    "FIELDS",
    "NUMBER_FIELDS",
    "REQUIRED_FIELDS",
    "metrics_from_mapping",
    "parse_csv",
    "parse_jsonl",
]

NUMBER_FIELDS = ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes")
REQUIRED_FIELDS = ("job_id", "tenant_id", "queue_name", *NUMBER_FIELDS)
OPTIONAL_FIELDS = ("job_type", "priority", "timestamp", "resources", "qos", "labels", "exit_state")
#: fields holding a JSON object (a CSV cell holds it as JSON text)
OBJECT_FIELDS = ("resources", "labels")
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


Parsed = ParsedJob | LineError


def _error(line: int, exc: ValidationError) -> LineError:
    return LineError(line, str(exc), exc.field)


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("timestamp", value, "must be an ISO-8601 date-time string such as 2024-01-15T12:00:00Z")
    return parse_instant("timestamp", value)


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
    resources = data.get("resources") or {}
    if not isinstance(resources, dict) or any(
        isinstance(v, bool) or not isinstance(v, (int, Decimal)) for v in resources.values()
    ):
        raise ValidationError("resources", resources, 'must be an object of numbers such as {"gpu:a100": 3600}')
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValidationError("labels", labels, 'must be an object of strings such as {"project": "llm"}')
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
        resources=resources,
        qos=data.get("qos") or "",
        labels=labels,
        exit_state=data.get("exit_state") or "",
    )


def parse_jsonl(lines: Iterable[str]) -> Iterator[Parsed]:
    """One JSON object per line; blank lines are skipped."""
    for number, raw in enumerate(lines, start=1):
        text = (raw.lstrip("\ufeff") if number == 1 else raw).rstrip("\r\n")  # columns of the line itself
        if not text.strip():
            continue
        try:
            yield ParsedJob(number, metrics_from_mapping(loads_exact(text)))
        except ValidationError as exc:
            yield _error(number, exc)
        except json.JSONDecodeError as exc:
            yield LineError(number, f"record: not valid JSON: {exc.msg} at column {exc.colno}", "record")


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
        elif key in OBJECT_FIELDS:
            if text.strip():
                try:
                    data[key] = loads_exact(text)
                except (json.JSONDecodeError, ValidationError):
                    raise ValidationError(key, text, "must be a JSON object in the cell") from None
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
