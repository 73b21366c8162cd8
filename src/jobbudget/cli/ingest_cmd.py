"""``jobbudget ingest FILE``: price and store job metrics from JSON Lines, CSV or SWF."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from ..domain.errors import ValidationError
from ..domain.money import ZERO
from ..ingest import LineError, ParsedJob, SwfJob, parse_csv, parse_jsonl, parse_swf
from ..service import FUTURE_TOLERANCE, BudgetService
from .alerts_cmd import NotifyOption, deliver_after_ingest, dispatch_text, open_foreground_service
from .common import (
    BatchSizeOption,
    ConfigOption,
    DatabaseOption,
    JsonOption,
    Settings,
    StrictOption,
    cli_errors,
    emit_json,
    err_console,
)

if TYPE_CHECKING:
    from ..notify.dispatcher import DispatchResult

__all__ = ["ingest"]

_PROGRESS_MIN_BYTES = 1 << 20  # show a progress bar for files of 1 MiB and more
_BATCH_INDEX = re.compile(r"^batch\[(\d+)\]")


class Format(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    swf = "swf"


_EXTENSIONS = {
    ".jsonl": Format.jsonl,
    ".ndjson": Format.jsonl,
    ".json": Format.jsonl,
    ".csv": Format.csv,
    ".swf": Format.swf,
}


def _swf_items(lines: Iterable[str]) -> Iterator[ParsedJob | LineError]:
    for item in parse_swf(lines):
        yield ParsedJob(item.line, item.metrics) if isinstance(item, SwfJob) else item


PARSERS: dict[Format, Callable[[Iterable[str]], Iterator[ParsedJob | LineError]]] = {
    Format.jsonl: parse_jsonl,
    Format.csv: parse_csv,
    Format.swf: _swf_items,
}


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
        }


def _format_of(file: str, given: Format | None) -> Format:
    if given is not None:
        return given
    if file == "-":
        return Format.jsonl
    found = _EXTENSIONS.get(Path(file).suffix.lower())
    if found is None:
        raise ValidationError("format", Path(file).suffix or file, "cannot tell the format from the name; use --format")
    return found


@contextlib.contextmanager
def _open(file: str) -> Iterator[TextIO]:
    if file == "-":
        yield sys.stdin
        return
    try:
        fh = open(file, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ValidationError("file", file, f"cannot read: {exc.strerror or exc}") from None
    with fh:
        yield fh


def _lines(fh: TextIO, file: str, on_line: Callable[[int], None] | None) -> Iterator[str]:
    try:
        for line in fh:
            if on_line is not None:
                on_line(len(line))
            yield line
    except UnicodeDecodeError as exc:
        raise ValidationError("file", file, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class _Ingester:
    """Stores parsed jobs in batches and keeps the counts."""

    def __init__(self, service: BudgetService, summary: Summary, report: Callable[[LineError], None]) -> None:
        self.service = service
        self.summary = summary
        self.report = report
        self.limit = datetime.now(UTC) + FUTURE_TOLERANCE

    def reject(self, error: LineError) -> None:
        self.summary.rejected += 1
        self.summary.errors.append(error)
        self.report(error)

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
        return item

    def store(self, batch: list[ParsedJob]) -> None:
        while batch:
            try:
                costs = self.service.process_job_costs([p.metrics for p in batch])
            except ValidationError as exc:
                match = _BATCH_INDEX.match(exc.field)
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


def ingest(
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="Metrics file, or - for standard input.")],
    format: Annotated[
        Format | None,
        typer.Option(
            "--format", help="jsonl, csv or swf (a workload trace). Default: from the extension; - means jsonl."
        ),
    ] = None,
    batch_size: BatchSizeOption = 1000,
    strict: StrictOption = False,
    notify: NotifyOption = True,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Price and store finished jobs from a file.

    JSON Lines: one object per line with job_id, tenant_id, queue_name, cpu_time,
    memory_mb_seconds, payload_bytes, redis_ops, network_bytes and optionally job_type,
    priority (0-10) and timestamp (ISO-8601 with offset; default: now).  CSV: a header
    row with those names.  Each bad line is reported with its number; a job id already
    stored for the tenant is counted once.  Exit status 1 if any line was rejected.
    Alerts the new spend fires are delivered before the command ends (--no-notify:
    left queued for `jobbudget alerts dispatch`).
    """
    settings = Settings(config, database_url, json)
    with cli_errors():
        fmt = _format_of(file, format)
        summary = Summary(file=file, format=fmt.value, strict=strict)
        console = err_console()

        def report(error: LineError) -> None:
            if not json:
                console.print(Text("rejected ", style="red") + Text(str(error)), soft_wrap=True)

        with open_foreground_service(settings) as service, _open(file) as fh, _progress(file, json, console) as advance:
            ingester = _Ingester(service, summary, report)
            items = PARSERS[fmt](_lines(fh, file, advance))
            if strict:
                good = [p for item in items if (p := ingester.check(item)) is not None]
                if summary.rejected == 0:
                    for i in range(0, len(good), batch_size):
                        ingester.store(good[i : i + batch_size])
            else:
                batch: list[ParsedJob] = []
                for item in items:
                    parsed = ingester.check(item)
                    if parsed is not None:
                        batch.append(parsed)
                        if len(batch) >= batch_size:
                            ingester.store(batch)
                            batch = []
                ingester.store(batch)
            notifications = deliver_after_ingest(service, stored=summary.stored, notify=notify)
    _print_summary(summary, json, notifications)
    if summary.rejected:
        raise typer.Exit(1)


@contextlib.contextmanager
def _progress(file: str, json: bool, console: Console) -> Iterator[Callable[[int], None] | None]:
    """A Rich progress bar on stderr for large files (terminal only, never with --json)."""
    try:
        size = Path(file).stat().st_size if file != "-" else 0
    except OSError:
        size = 0
    if json or size < _PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("ingesting"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("ingest", total=size)
        yield lambda n: progress.advance(task, n)


def _print_summary(summary: Summary, json: bool, notifications: DispatchResult | None = None) -> None:
    if json:
        emit_json({**summary.as_json(), "notifications": notifications})
        return
    s = summary
    not_applied = " Nothing was stored (--strict)." if s.strict and s.rejected else ""
    typer.echo(
        f"{_count(s.read, 'job')} read: {s.stored} stored, {_count(s.duplicates, 'duplicate')}, "
        f"{s.rejected} rejected. Total cost of stored jobs: {s.total_cost}.{not_applied}"
    )
    if notifications is not None and notifications.worked:
        typer.echo(dispatch_text(notifications))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
