"""``jobbudget import --format swf|sacct|jsonl|csv FILE``: price and store the finished
jobs of a scheduler's accounting file (see ``docs/importing.md``).

:func:`import_file` is the Python API the command uses (and the benchmark times).
"""

from __future__ import annotations

import contextlib
import gc
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..config import PRESETS
from ..domain.cost import CostModel
from ..domain.errors import ValidationError
from ..importers import SacctOptions, Skipped, SwfOptions, parse_sacct, parse_swf_trace
from ..importers.common import ImportItem
from ..ingest import LineError, ParsedJob, parse_csv, parse_jsonl
from ..pricing import cost_model_from_preset, preset_names
from ..service import MAX_BATCH, BudgetService
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
from .ingest_cmd import Summary, _count, _Ingester, _open

if TYPE_CHECKING:
    from ..notify.dispatcher import DispatchResult

__all__ = ["ImportFormat", "ImportResult", "import_file", "import_jobs", "parse_items", "resolve_cost_model"]

_PREFIX_UNSAFE = re.compile(r"[^\w.-]+")


class ImportFormat(StrEnum):
    swf = "swf"
    sacct = "sacct"
    jsonl = "jsonl"
    csv = "csv"


class TenantFrom(StrEnum):
    user = "user"
    group = "group"
    account = "account"


class QueueFrom(StrEnum):
    queue_name = "queue"
    partition_ = "partition"  # (a member named "partition" would hide str.partition)
    qos = "qos"


class MemoryUnit(StrEnum):
    auto = "auto"
    kb = "kb"
    bytes = "bytes"


@dataclass(slots=True)
class ImportResult:
    """What an import did: the ingest counts plus the skipped records, the cost model
    it switched to (if asked) and how long it took."""

    summary: Summary
    skipped: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    cost_model: str | None = None
    cost_model_version: int | None = None
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
            "seconds": round(self.seconds, 3),
        }


def default_prefix(fmt: ImportFormat, file: str) -> str:
    """SWF: the file's name without extension (job numbers restart in every trace);
    sacct: ``slurm`` (Slurm job ids are unique on a cluster)."""
    if fmt is ImportFormat.sacct:
        return "slurm"
    stem = Path(file).stem if file != "-" else "swf"
    return _PREFIX_UNSAFE.sub("_", stem).strip("_") or "swf"


def parse_items(
    fmt: ImportFormat,
    lines: Iterable[str],
    *,
    prefix: str,
    tenant_from: str = "user",
    queue_from: str | None = None,
    swf_memory_unit: str = "auto",
    timezone: str = "UTC",
) -> Iterator[ImportItem]:
    """The parser of ``fmt`` over ``lines``."""
    if fmt in (ImportFormat.jsonl, ImportFormat.csv):
        if tenant_from != "user" or queue_from is not None:
            raise ValidationError("tenant_from", tenant_from, "--tenant-from/--queue-from apply to swf and sacct only")
        return parse_jsonl(lines) if fmt is ImportFormat.jsonl else parse_csv(lines)
    if fmt is ImportFormat.swf:
        swf = SwfOptions(prefix, tenant_from, queue_from or "queue", swf_memory_unit)
        return parse_swf_trace(lines, swf)
    sacct = SacctOptions(prefix, tenant_from, queue_from or "partition", timezone)
    return parse_sacct(lines, sacct)


def resolve_cost_model(name: str) -> CostModel:
    """A named cost model: ``default``, ``production``, ``staging`` or a pricing preset
    (``gcp``, ``aws``, ...)."""
    if name in PRESETS:
        return PRESETS[name]()
    if name in preset_names():
        return cost_model_from_preset(name)
    raise ValidationError(
        "cost_model", name, f"unknown cost model; choose one of {', '.join((*PRESETS, *preset_names()))}"
    )


class _Reader:
    """Lines of a text file, counting the characters read (the progress bar's bytes)."""

    def __init__(self, fh: TextIO, file: str) -> None:
        self.fh = fh
        self.file = file
        self.done = 0

    def __iter__(self) -> Iterator[str]:
        try:
            for line in self.fh:
                self.done += len(line)
                yield line
        except UnicodeDecodeError as exc:
            raise ValidationError("file", self.file, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


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
    id_prefix: str | None = None,
    cost_model: str | None = None,
    strict: bool = False,
    batch_size: int = 10000,
    report: Callable[[LineError], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Parse ``file`` (a path, or ``-`` for standard input) and store its jobs through
    ``service`` in batches of ``batch_size``.  ``cost_model`` switches the service's
    model first (a new cost model version).  ``progress(characters_read, jobs)`` is
    called after every batch."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValidationError("batch_size", batch_size, f"must be between 1 and {MAX_BATCH}")
    result = ImportResult(Summary(file=file, format=fmt.value, strict=strict))
    prefix = id_prefix if id_prefix is not None else default_prefix(fmt, file)
    model = resolve_cost_model(cost_model) if cost_model is not None else None
    started = time.perf_counter()
    with _open(file) as fh, _collector_paused():
        reader = _Reader(fh, file)
        items = parse_items(
            fmt,
            reader,
            prefix=prefix,
            tenant_from=tenant_from,
            queue_from=queue_from,
            swf_memory_unit=swf_memory_unit,
            timezone=timezone,
        )
        if model is not None:
            assert cost_model is not None
            result.cost_model = cost_model
            result.cost_model_version = service.update_cost_model(
                model, actor=f"import --cost-model {cost_model}"
            ).version
        ingester = _Ingester(service, result.summary, report or (lambda _e: None))
        tick: Callable[[], None] = (lambda: progress(reader.done, result.summary.read)) if progress else (lambda: None)
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


def import_jobs(
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="Accounting file, or - for standard input.")],
    format: Annotated[
        ImportFormat,
        typer.Option("--format", help="swf (workload trace), sacct (Slurm `sacct --parsable2`), jsonl or csv."),
    ],
    tenant_from: Annotated[
        TenantFrom, typer.Option("--tenant-from", help="Tenant: the job's user, group or (sacct) account.")
    ] = TenantFrom.user,
    queue_from: Annotated[
        QueueFrom | None,
        typer.Option(
            "--queue-from",
            help="Queue: SWF queue name/number (default) or partition; sacct partition (default) or qos.",
        ),
    ] = None,
    cost_model: Annotated[
        str | None,
        typer.Option(
            "--cost-model",
            metavar="NAME",
            help="Price with this model from now on (default, production, staging, gcp, aws, ...): "
            "stores a new cost model version.",
        ),
    ] = None,
    swf_memory_unit: Annotated[
        MemoryUnit,
        typer.Option("--swf-memory-unit", help="SWF field 10: auto, kb (per processor) or bytes (whole job)."),
    ] = MemoryUnit.auto,
    timezone: Annotated[
        str, typer.Option("--timezone", help="sacct: the cluster's time zone (e.g. Europe/Prague).")
    ] = "UTC",
    id_prefix: Annotated[
        str | None,
        typer.Option(
            "--id-prefix", help="Job ids are PREFIX-<job number>. Default: the SWF file's name; sacct: slurm."
        ),
    ] = None,
    batch_size: BatchSizeOption = 10000,
    strict: StrictOption = False,
    notify: NotifyOption = True,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Import finished jobs from a scheduler's accounting file and price them.

    Each job gets a stable id, so importing the same file again stores nothing new
    (the jobs are counted as duplicates).  Records that are not finished jobs (never
    ran, still running or pending) are skipped and counted; lines that cannot be read
    are rejected with their line number and the field at fault.  Exit status 1 if any
    line was rejected.  See docs/importing.md for the mapping of each format.
    """
    settings = Settings(config, database_url, json)
    with cli_errors():
        console = err_console()

        def report(error: LineError) -> None:
            if not json:
                console.print(Text("rejected ", style="red") + Text(str(error)), soft_wrap=True)

        with open_foreground_service(settings) as service, _progress(file, json, console) as progress:
            result = import_file(
                service,
                file,
                format,
                tenant_from=tenant_from.value,
                queue_from=None if queue_from is None else queue_from.value,
                swf_memory_unit=swf_memory_unit.value,
                timezone=timezone,
                id_prefix=id_prefix,
                cost_model=cost_model,
                strict=strict,
                batch_size=batch_size,
                report=report,
                progress=progress,
            )
            notifications = deliver_after_ingest(service, stored=result.summary.stored, notify=notify)
    _print(result, json, notifications)
    if result.summary.rejected:
        raise typer.Exit(1)


@contextlib.contextmanager
def _progress(file: str, json: bool, console: Console) -> Iterator[Callable[[int, int], None] | None]:
    """Characters read of the file's size and jobs/s, on stderr when it is a terminal."""
    try:
        size = Path(file).stat().st_size if file != "-" else 0
    except OSError:
        size = 0
    if json or size == 0 or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[jobs]:,} jobs, {task.fields[rate]:,.0f} jobs/s"),
        TimeElapsedColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("import", total=size, jobs=0, rate=0.0)

        def update(done: int, jobs: int) -> None:
            elapsed = time.perf_counter() - started
            bar.update(task, completed=min(done, size), jobs=jobs, rate=jobs / elapsed if elapsed > 0 else 0.0)

        yield update


def _print(result: ImportResult, json: bool, notifications: DispatchResult | None) -> None:
    if json:
        emit_json({**result.as_json(), "notifications": notifications})
        return
    s = result.summary
    if result.cost_model is not None:
        typer.echo(f"Cost model switched to {result.cost_model!r} (version {result.cost_model_version}).")
    not_applied = " Nothing was stored (--strict)." if s.strict and s.rejected else ""
    reasons = ", ".join(f"{n} {kind}" for kind, n in result.skipped_reasons.most_common())
    typer.echo(
        f"{_count(s.read, 'job')} read: {s.stored} stored, {_count(s.duplicates, 'duplicate')}, "
        f"{s.rejected} rejected; {result.skipped} skipped{f' ({reasons})' if reasons else ''}. "
        f"Total cost of stored jobs: {s.total_cost}.{not_applied}"
    )
    if notifications is not None and notifications.worked:
        typer.echo(dispatch_text(notifications))
