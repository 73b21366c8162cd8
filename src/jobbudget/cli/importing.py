"""Reading a job file into the service: what ``jobbudget import`` and ``jobbudget
ingest`` both run (one parser per format, one way to batch, count and reject).

:func:`import_file` is the Python API (the benchmark times it)."""

from __future__ import annotations

import contextlib
import gc
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..domain.cost import CostModel
from ..domain.errors import ValidationError
from ..domain.money import ZERO
from ..domain.resources import check_resources
from ..importers import (
    ImportItem,
    LineError,
    ParsedJob,
    SacctOptions,
    Skipped,
    SwfOptions,
    open_input,
    parse_csv,
    parse_jsonl,
    parse_sacct,
    parse_swf_trace,
)
from ..pricing import named_model
from ..service import FUTURE_TOLERANCE, MAX_BATCH, BudgetService
from .import_prices import parse_prices, unpriced

__all__ = [
    "ImportFormat",
    "ImportResult",
    "Summary",
    "default_prefix",
    "format_of",
    "import_file",
    "parse_items",
    "parse_prices",
    "resolve_cost_model",
]

_PREFIX_UNSAFE = re.compile(r"[^\w.-]+")
_BATCH_INDEX = re.compile(r"^batch\[(\d+)\]")
_COMPRESSED = (".gz", ".bz2", ".xz")


class ImportFormat(StrEnum):
    swf = "swf"
    sacct = "sacct"
    jsonl = "jsonl"
    csv = "csv"


_EXTENSIONS = {
    ".jsonl": ImportFormat.jsonl,
    ".ndjson": ImportFormat.jsonl,
    ".json": ImportFormat.jsonl,
    ".csv": ImportFormat.csv,
    ".swf": ImportFormat.swf,
}


def format_of(file: str, given: ImportFormat | None) -> ImportFormat:
    """``given``, else the format the file's extension names (``jobs.jsonl.gz`` is
    JSON Lines); standard input is JSON Lines."""
    if given is not None:
        return given
    if file == "-":
        return ImportFormat.jsonl
    path = Path(file)
    if path.suffix.lower() in _COMPRESSED:
        path = path.with_suffix("")
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ValidationError("format", path.suffix or file, "cannot tell the format from the name; use --format")
    return found


@dataclass(slots=True)
class Summary:
    file: str
    format: str
    strict: bool
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    total_cost: Decimal = ZERO
    errors: list[LineError] = field(default_factory=list)
    #: why lines were rejected: ``no price for gpu:a100``, ``bad End``... and how many
    rejected_reasons: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "strict": self.strict,
            "read": self.read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "total_cost": self.total_cost,
            "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in self.errors],
            "rejected_reasons": dict(self.rejected_reasons),
        }


@dataclass(slots=True)
class ImportResult:
    """What an import did: the counts plus the skipped records, the cost model it
    switched to (if asked) and how long it took."""

    summary: Summary
    skipped: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    cost_model: str | None = None
    cost_model_version: int | None = None
    #: the resource prices ``--price`` added to the cost model
    prices: dict[str, Decimal] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def jobs_per_s(self) -> float:
        return self.summary.read / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            **self.summary.as_json(),
            "skipped": self.skipped,
            "skipped_reasons": dict(self.skipped_reasons),
            "cost_model": self.cost_model,
            "cost_model_version": self.cost_model_version,
            "prices": self.prices,
            "seconds": round(self.seconds, 3),
        }


def default_prefix(fmt: ImportFormat, file: str) -> str:
    """SWF: the file's name without extensions (job numbers restart in every trace);
    sacct: ``slurm`` (Slurm job ids are unique on a cluster)."""
    if fmt is ImportFormat.sacct:
        return "slurm"
    path = Path(file) if file != "-" else Path("swf")
    if path.suffix.lower() in _COMPRESSED:
        path = path.with_suffix("")
    return _PREFIX_UNSAFE.sub("_", path.stem).strip("_") or "swf"


def parse_items(
    fmt: ImportFormat,
    lines: Iterable[str],
    *,
    prefix: str,
    tenant_from: str = "user",
    queue_from: str | None = None,
    swf_memory_unit: str = "auto",
    timezone: str = "UTC",
    delimiter: str = "|",
    columns: tuple[str, ...] | None = None,
    sacct_billing: bool = False,
) -> Iterator[ImportItem]:
    """The parser of ``fmt`` over ``lines``."""
    if fmt in (ImportFormat.jsonl, ImportFormat.csv):
        if tenant_from != "user" or queue_from is not None:
            raise ValidationError("tenant_from", tenant_from, "--tenant-from/--queue-from apply to swf and sacct only")
        return parse_jsonl(lines) if fmt is ImportFormat.jsonl else parse_csv(lines)
    if fmt is ImportFormat.swf:
        return parse_swf_trace(lines, SwfOptions(prefix, tenant_from, queue_from or "queue", swf_memory_unit))
    sacct = SacctOptions(prefix, tenant_from, queue_from or "partition", timezone, delimiter, columns, sacct_billing)
    return parse_sacct(lines, sacct)


def resolve_cost_model(name: str) -> CostModel:
    """A named cost model: ``default``, ``production``, ``staging``, ``seed`` or a
    cloud table (``gcp``, ``aws``, ...); see :func:`jobbudget.pricing.named_model`."""
    return named_model(name, field="cost_model")


class _Ingester:
    """Stores parsed jobs in batches and keeps the counts."""

    def __init__(self, service: BudgetService, summary: Summary, report: Callable[[LineError], None]) -> None:
        self.service = service
        self.summary = summary
        self.report = report
        self.limit = datetime.now(UTC) + FUTURE_TOLERANCE
        self.model = service.get_cost_model()
        self.priced: dict[tuple[str, str], bool] = {}

    def reject(self, error: LineError) -> None:
        self.summary.rejected += 1
        self.summary.errors.append(error)
        field_name = _BATCH_INDEX.sub("", error.field or "").lstrip(".")
        unpriced = field_name.startswith("resources.") and "no price for" in error.message
        kind = f"no price for {field_name[10:]}" if unpriced else f"bad {field_name.split('.', 1)[0]}"
        self.summary.rejected_reasons[kind if field_name else "unreadable"] += 1
        self.report(error)

    def missing_price(self, item: ParsedJob) -> LineError | None:
        """The refusal of a job with a resource the cost model does not price, else None."""
        queue = item.metrics.queue_name
        for name, quantity in item.metrics.resources.items():
            key = (name, queue)
            ok = self.priced.get(key)
            if ok is None:
                ok = self.priced[key] = self.model.price_of(name, queue) is not None
            if not ok:
                return unpriced(item.line, name, quantity)
        return None

    def check(self, item: ParsedJob | LineError) -> ParsedJob | None:
        """Count a parsed line; reject it (returning None) if it cannot be stored."""
        self.summary.read += 1
        if isinstance(item, LineError):
            self.reject(item)
            return None
        ts = item.metrics.timestamp
        if ts is not None and ts > self.limit:
            self.reject(LineError(item.line, f"timestamp: is in the future (got {ts.isoformat()!r})", "timestamp"))
            return None
        if item.metrics.resources and (refused := self.missing_price(item)) is not None:
            self.reject(refused)
            return None
        return item

    def store(self, batch: list[ParsedJob]) -> None:
        while batch:
            try:
                costs = self.service.process_job_costs([p.metrics for p in batch])
            except ValidationError as exc:
                match = _BATCH_INDEX.match(exc.field)
                rest = exc.field[match.end() + 1 :] if match else exc.field
                if rest.startswith("resources.") and self._refuse_unpriced(batch):
                    continue  # the cost model lost a price meanwhile: that job is refused, the rest go on
                if match is None or int(match.group(1)) >= len(batch):
                    raise
                bad = batch.pop(int(match.group(1)))
                self.reject(LineError(bad.line, f"{exc.field[match.end() + 1 :] or 'job'}: {exc.reason}", exc.field))
                continue
            for cost in costs:
                if cost.duplicate:
                    self.summary.duplicates += 1
                else:
                    self.summary.stored += 1
                    self.summary.total_cost += cost.total_cost
            return

    def _refuse_unpriced(self, batch: list[ParsedJob]) -> bool:
        """Reject the first job of ``batch`` the service's model does not price."""
        self.model, self.priced = self.service.get_cost_model(), {}
        for i, item in enumerate(batch):
            if item.metrics.resources and (refused := self.missing_price(item)) is not None:
                batch.pop(i)
                self.reject(refused)
                return True
        return False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while importing.  Parsing allocates millions of
    objects that live until their batch is stored, and the collector would scan them
    again and again (a fifth of the import time) to find cycles that importing never
    makes.  One collection runs at the end; the previous state is restored."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def import_file(
    service: BudgetService,
    file: str,
    fmt: ImportFormat,
    *,
    tenant_from: str = "user",
    queue_from: str | None = None,
    swf_memory_unit: str = "auto",
    timezone: str = "UTC",
    delimiter: str = "|",
    columns: tuple[str, ...] | None = None,
    id_prefix: str | None = None,
    cost_model: str | None = None,
    prices: Mapping[str, Decimal] | None = None,
    sacct_billing: bool = False,
    strict: bool = False,
    batch_size: int = 10000,
    report: Callable[[LineError], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Parse ``file`` (a path, or ``-`` for standard input; gzip, bzip2 and xz are
    read transparently) and store its jobs through ``service`` in batches of
    ``batch_size``.  ``cost_model`` switches the service's model first and ``prices``
    (``{"gpu:a100": Decimal("0.001")}``) adds named resources' prices to it (either
    is a new cost model version).  ``sacct_billing`` bills sacct's ``billing`` TRES as
    the resource ``billing``.  A job with a resource the model does not price is
    rejected, naming it.  ``progress(bytes_read, jobs)`` is called after every batch."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValidationError("batch_size", batch_size, f"must be between 1 and {MAX_BATCH}")
    result = ImportResult(Summary(file=file, format=fmt.value, strict=strict))
    prefix = id_prefix if id_prefix is not None else default_prefix(fmt, file)
    model = resolve_cost_model(cost_model) if cost_model is not None else None
    priced = check_resources("price", prices) if prices else {}
    started = time.perf_counter()
    with open_input(file) as source, _collector_paused():
        items = parse_items(
            fmt,
            source,
            prefix=prefix,
            tenant_from=tenant_from,
            queue_from=queue_from,
            swf_memory_unit=swf_memory_unit,
            timezone=timezone,
            delimiter=delimiter,
            columns=columns,
            sacct_billing=sacct_billing,
        )
        if model is not None or priced:
            base = model if model is not None else service.get_cost_model()
            if priced:
                base = replace(base, resources={**base.resources, **priced})
            result.cost_model, result.prices = cost_model, priced
            flags = [f"--cost-model {cost_model}"] if cost_model else []
            flags += [f"--price {n}={p}" for n, p in priced.items()]
            result.cost_model_version = service.update_cost_model(base, actor="import " + " ".join(flags)).version
        ingester = _Ingester(service, result.summary, report or (lambda _e: None))
        tick: Callable[[], None] = (
            (lambda: progress(source.bytes_read, result.summary.read)) if progress else (lambda: None)
        )
        good: list[ParsedJob] = []
        for item in items:
            if isinstance(item, Skipped):
                result.skipped += 1
                result.skipped_reasons[_reason_kind(item.reason)] += 1
                continue
            parsed = ingester.check(item)
            if parsed is None:
                continue
            good.append(parsed)
            if not strict and len(good) >= batch_size:
                ingester.store(good)
                good = []
                tick()
        if strict and result.summary.rejected:
            good = []
        for i in range(0, len(good), batch_size):
            ingester.store(good[i : i + batch_size])
            tick()
        tick()
    result.seconds = time.perf_counter() - started
    return result


def _reason_kind(reason: str) -> str:
    """``never ran``, ``not finished``, ... (the reason without its details)."""
    return reason.split(" (", 1)[0]
