"""Reading benchmark results from CSV (pure: the caller opens the file).

The header names :class:`~jobbudget.domain.calibration.BenchmarkResult` fields in
any order: ``actual_cost``, ``cpu_time``, ``memory_mb_seconds``, ``payload_bytes``,
``redis_ops``, ``network_bytes`` and ``timestamp`` (ISO-8601 with a UTC offset) are
required; ``job_type`` (default empty), ``calculated_cost`` (default: the price under
the given model) and ``infrastructure_cost`` (default: ``actual_cost``) are optional,
and an empty cell means the default too.  Numbers are read exactly (``Decimal``).
Every bad line is reported, with its 1-based line number, in one
:class:`BenchmarkFileError`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal

from .calibration import USAGES, BenchmarkResult
from .cost import CostCalculationEngine, CostModel, default_cost_model
from .errors import ValidationError
from .money import ZERO, parse_decimal
from .resources import check_resource_name

__all__ = ["BenchmarkFileError", "LineProblem", "read_benchmarks_csv"]

FIELDS = tuple(f.name for f in fields(BenchmarkResult) if f.name != "resources")
OPTIONAL = ("job_type", "calculated_cost", "infrastructure_cost")
#: a named resource's usage: ``resources.gpu:a100`` (GPU-seconds), fitted like the usages
RESOURCE_PREFIX = "resources."
REQUIRED = tuple(name for name in FIELDS if name not in OPTIONAL)
_SHOWN = 10


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A rejected line: its number (1 is the header), the field at fault and why."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class BenchmarkFileError(ValidationError):
    """The benchmark file has bad lines; ``problems`` lists every one of them."""

    def __init__(self, source: str, problems: list[LineProblem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in problems[:_SHOWN])
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        super().__init__("benchmarks", source, f"{len(problems)} bad line(s): {shown}{more}")


def read_benchmarks_csv(
    lines: Iterable[str], *, model: CostModel | None = None, source: str = "<csv>"
) -> list[BenchmarkResult]:
    """Benchmarks from CSV text (an open file or any iterable of lines).  A missing
    ``calculated_cost`` is priced with ``model`` (default: the default model).
    Raises :class:`BenchmarkFileError` naming every bad line; blank lines are skipped."""
    engine = CostCalculationEngine(model or default_cost_model())
    reader = csv.reader(lines)
    problems: list[LineProblem] = []
    try:
        header = next(reader, None)
        if header is None:
            raise BenchmarkFileError(source, [LineProblem(1, "header", "the file is empty; expected a header line")])
        columns = [name.strip() for name in header]
        problems.extend(_check_header(columns))
        if problems:
            raise BenchmarkFileError(source, problems)
        results: list[BenchmarkResult] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            try:
                results.append(_benchmark(columns, row, engine, reader.line_num))
            except _LineError as exc:
                problems.append(exc.problem)
    except csv.Error as exc:
        problems.append(LineProblem(reader.line_num, "csv", f"not valid CSV ({exc}); the rest was not read"))
    if problems:
        raise BenchmarkFileError(source, problems)
    return results


class _LineError(Exception):
    def __init__(self, problem: LineProblem) -> None:
        self.problem = problem


def _check_header(columns: list[str]) -> list[LineProblem]:
    found: list[LineProblem] = []
    seen: set[str] = set()
    for name in columns:
        if name.startswith(RESOURCE_PREFIX):
            try:
                check_resource_name(name, name.removeprefix(RESOURCE_PREFIX))
            except ValidationError as exc:
                found.append(LineProblem(1, name, exc.reason))
        elif name not in FIELDS:
            found.append(
                LineProblem(
                    1, name, f"unknown column {name!r}; expected {', '.join(FIELDS)} or resources.NAME (gpu:a100...)"
                )
            )
        elif name in seen:
            found.append(LineProblem(1, name, f"column {name!r} appears twice"))
        seen.add(name)
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        found.append(LineProblem(1, missing[0], f"missing required column(s): {', '.join(missing)}"))
    return found


def _benchmark(columns: list[str], row: list[str], engine: CostCalculationEngine, line: int) -> BenchmarkResult:
    if len(row) != len(columns):
        raise _LineError(LineProblem(line, "row", f"{len(row)} cells but the header has {len(columns)} columns"))
    cells = {name: cell.strip() for name, cell in zip(columns, row, strict=True)}
    try:
        actual = _number("actual_cost", cells["actual_cost"])
        usage = {name: _number(name, cells[name]) for name in USAGES}
        calculated = _optional("calculated_cost", cells)
        infrastructure = _optional("infrastructure_cost", cells)
        result = BenchmarkResult(
            job_type=cells.get("job_type", ""),
            actual_cost=actual,
            calculated_cost=ZERO if calculated is None else calculated,
            cpu_time=usage["cpu_time"],
            memory_mb_seconds=usage["memory_mb_seconds"],
            payload_bytes=usage["payload_bytes"],
            redis_ops=usage["redis_ops"],
            network_bytes=usage["network_bytes"],
            infrastructure_cost=actual if infrastructure is None else infrastructure,
            timestamp=_timestamp(cells["timestamp"]),
            resources={
                name.removeprefix(RESOURCE_PREFIX): _number(name, text)
                for name, text in cells.items()
                if name.startswith(RESOURCE_PREFIX) and text
            },
        )
        if calculated is None:  # price the validated usages with the model
            price = engine.calculate_breakdown(**{name: getattr(result, name) for name in USAGES}).total
            priced = {k: v for k, v in result.resources.items() if engine.model.price_of(k) is not None}
            price += sum((c.cost for c in engine.price_resources(priced, "")), ZERO)
            result = replace(result, calculated_cost=price)
        return result
    except ValidationError as exc:
        raise _LineError(LineProblem(line, exc.field, str(exc))) from None


def _optional(name: str, cells: dict[str, str]) -> Decimal | None:
    text = cells.get(name, "")
    return _number(name, text) if text else None


def _number(name: str, text: str) -> Decimal:
    try:
        return parse_decimal(text)
    except (TypeError, ValueError):
        raise ValidationError(name, text, "must be a number") from None


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("timestamp", text, "must be an ISO-8601 date-time such as 2024-01-15T12:00:00Z") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("timestamp", text, "must include a UTC offset such as Z or +02:00")
    return value
