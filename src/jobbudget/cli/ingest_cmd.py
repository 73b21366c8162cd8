"""``jobbudget ingest FILE``: price and store job metrics from JSON Lines, CSV or SWF,
the format told by the file's extension.  It runs the same import as ``jobbudget
import`` (the same parsers, batching, counts and errors)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from ..importers import LineError
from .alerts_cmd import NotifyOption, deliver_after_ingest, open_foreground_service
from .common import (
    BatchSizeOption,
    ConfigOption,
    DatabaseOption,
    JsonOption,
    Settings,
    StrictOption,
    cli_errors,
    err_console,
)
from .import_cmd import print_result, progress_bar
from .importing import ImportFormat, format_of, import_file

__all__ = ["ingest"]


def ingest(
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="Metrics file, or - for standard input.")],
    format: Annotated[
        ImportFormat | None,
        typer.Option(
            "--format",
            help="jsonl, csv, swf or sacct. Default: from the extension (.jsonl, .csv, .swf, "
            "also with .gz); - means jsonl.",
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
    left queued for `jobbudget alerts dispatch`).  `jobbudget import` reads the same
    formats with options for scheduler logs.
    """
    settings = Settings(config, database_url, json)
    with cli_errors():
        fmt = format_of(file, format)
        console = err_console()

        def report(error: LineError) -> None:
            if not json:
                console.print(Text("rejected ", style="red") + Text(str(error)), soft_wrap=True)

        with open_foreground_service(settings, creates=True) as service, progress_bar(file, json, console) as progress:
            result = import_file(
                service, file, fmt, strict=strict, batch_size=batch_size, report=report, progress=progress
            )
            notifications = deliver_after_ingest(service, stored=result.summary.stored, notify=notify)
    print_result(result, json, notifications)
    if result.summary.rejected:
        raise typer.Exit(1)
