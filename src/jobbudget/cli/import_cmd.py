"""``jobbudget import --format swf|sacct|jsonl|csv FILE``: price and store the finished
jobs of a scheduler's accounting file (see ``docs/importing.md``).

:func:`import_file` (from :mod:`jobbudget.cli.importing`) is the Python API the
command runs.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..importers import LineError, sacct_columns
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
from .importing import ImportFormat, ImportResult, import_file, parse_items, parse_prices, resolve_cost_model
from .render import money

if TYPE_CHECKING:
    from ..notify.dispatcher import DispatchResult

__all__ = ["ImportFormat", "ImportResult", "import_file", "import_jobs", "parse_items", "resolve_cost_model"]


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
    price: Annotated[
        list[str] | None,
        typer.Option(
            "--price",
            metavar="NAME=DOLLARS",
            help="Add a named resource's price to the cost model, e.g. gpu=0.0008 (per GPU-second, "
            "every GPU type) or gpu:a100=0.001; repeatable. Stores a new cost model version.",
        ),
    ] = None,
    sacct_billing: Annotated[
        bool,
        typer.Option(
            "--sacct-billing",
            help="sacct: bill Slurm's billing TRES as the resource billing (units x seconds); "
            "price it with --price billing=DOLLARS.",
        ),
    ] = False,
    swf_memory_unit: Annotated[
        MemoryUnit,
        typer.Option("--swf-memory-unit", help="SWF field 10: auto, kb (per processor) or bytes (whole job)."),
    ] = MemoryUnit.auto,
    timezone: Annotated[
        str, typer.Option("--timezone", help="sacct: the cluster's time zone (e.g. Europe/Prague).")
    ] = "UTC",
    delimiter: Annotated[
        str, typer.Option("--delimiter", help="sacct: the field separator given to sacct --delimiter.")
    ] = "|",
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            metavar="NAMES",
            help="sacct exports made with --noheader: the --format list given to sacct "
            "(JobID,User,Partition,...), or xdmod for XDMoD's documented export.",
        ),
    ] = None,
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
    line was rejected.  Compressed files (gzip, bzip2, xz) are read as they are.  See
    docs/importing.md for the mapping of each format.
    """
    settings = Settings(config, database_url, json)
    with cli_errors():
        console = err_console()

        def report(error: LineError) -> None:
            if not json:
                console.print(Text("rejected ", style="red") + Text(str(error)), soft_wrap=True)

        with open_foreground_service(settings, creates=True) as service, progress_bar(file, json, console) as progress:
            result = import_file(
                service,
                file,
                format,
                tenant_from=tenant_from.value,
                queue_from=None if queue_from is None else queue_from.value,
                swf_memory_unit=swf_memory_unit.value,
                timezone=timezone,
                delimiter=delimiter,
                columns=None if columns is None else sacct_columns(columns),
                id_prefix=id_prefix,
                cost_model=cost_model,
                prices=parse_prices(price or ()),
                sacct_billing=sacct_billing,
                strict=strict,
                batch_size=batch_size,
                report=report,
                progress=progress,
            )
            notifications = deliver_after_ingest(service, stored=result.summary.stored, notify=notify)
    print_result(result, json, notifications)
    if result.summary.rejected:
        raise typer.Exit(1)


@contextlib.contextmanager
def progress_bar(file: str, json: bool, console: Console) -> Iterator[Callable[[int, int], None] | None]:
    """Bytes read of the file's size and jobs/s, on stderr when it is a terminal."""
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


def print_result(result: ImportResult, json: bool, notifications: DispatchResult | None) -> None:
    if json:
        emit_json({**result.as_json(), "notifications": notifications})
        return
    s = result.summary
    if result.cost_model_version is not None:
        prices = ", ".join(f"{name} = {price} $" for name, price in result.prices.items())
        switched = f"switched to {result.cost_model!r}" if result.cost_model is not None else "changed"
        with_prices = f" with {prices}" if prices else ""
        typer.echo(f"Cost model {switched}{with_prices} (version {result.cost_model_version}).")
    not_applied = " Nothing was stored (--strict)." if s.strict and s.rejected else ""
    reasons = ", ".join(f"{n} {kind}" for kind, n in result.skipped_reasons.most_common())
    why = ", ".join(f"{n} {kind}" for kind, n in s.rejected_reasons.most_common())
    skipped = ""
    if s.format in (ImportFormat.swf, ImportFormat.sacct):  # JSON Lines and CSV skip nothing
        skipped = f"; {result.skipped} skipped{f' ({reasons})' if reasons else ''}"
    typer.echo(
        f"{_count(s.read, 'job')} read: {s.stored} stored, {_count(s.duplicates, 'duplicate')}, "
        f"{s.rejected} rejected{skipped}. Total cost of stored jobs: {money(s.total_cost, 'USD')}.{not_applied}"
    )
    if why:
        typer.echo(f"Rejected: {why}.")
    unpriced = sorted(kind[len("no price for ") :] for kind in s.rejected_reasons if kind.startswith("no price for "))
    if unpriced:
        typer.echo(
            f"The cost model has no price for {', '.join(unpriced)}: add one with --price NAME=DOLLARS "
            "(`jobbudget import`) or `jobbudget costmodel set --price NAME=DOLLARS` (docs/importing.md, GPUs and "
            "other resources) and import again; stored jobs count as duplicates."
        )
    if notifications is not None and notifications.worked:
        typer.echo(dispatch_text(notifications))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
