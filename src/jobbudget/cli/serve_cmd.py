"""``jobbudget serve``: run the HTTP API with uvicorn."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from ..domain.errors import ValidationError
from .common import ConfigOption, DatabaseOption, Settings, cli_errors, parse_at, require_database

__all__ = ["serve"]

FACTORY = "jobbudget.api.app:app_from_env"
#: On SIGTERM or Ctrl-C requests in flight get this long to finish before they are
#: cancelled (open WebSockets are closed at once with 1012), so the process exits well
#: before an orchestrator's own deadline (Kubernetes: 30 s) and shuts its service down.
GRACEFUL_SHUTDOWN_SECONDS = 10


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (each with its own service).")] = 1,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Run the server's clock from this instant (ISO 8601 with offset; it then runs on in real time): "
            "to look at past data such as the demo's March 2013 in the dashboard. Not for production.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the web
    dashboard (at /: sign in with an API key).

    Every /v1 route needs `Authorization: Bearer <API key>`.  With --workers above 1
    each worker builds its own service from the configuration (JOBBUDGET_CONFIG and
    JOBBUDGET_* variables; --config and --database-url are passed on that way).
    Connection limits and timeouts are configuration keys (http_header_timeout,
    http_keep_alive_timeout, http_max_connections, http_backlog,
    http_max_header_bytes; see docs/operations.md).
    """
    settings = Settings(config, database_url)
    with cli_errors():
        started_at = parse_at(at)
        if started_at is not None and workers > 1:
            raise ValidationError("at", at, "works with one worker only (--workers 1)")
        try:
            import uvicorn
        except ImportError:
            typer.echo("error [MISSING_DEPENDENCY]: the API needs: pip install 'jobbudget[api]'", err=True)
            raise typer.Exit(1) from None
        built = settings.build_config()  # fail here, not in every worker
        require_database(built)
    from ..api.serving import export_settings, raise_open_files_limit, uvicorn_options

    options = uvicorn_options(built)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"Dashboard: http://{shown if ':' not in shown else f'[{shown}]'}:{port}/ (sign in with an API key)")
    export_settings(built, os.environ)
    raise_open_files_limit(built)
    if workers > 1:
        if config is not None:
            os.environ["JOBBUDGET_CONFIG"] = str(config)
        os.environ["JOBBUDGET_DATABASE_URL"] = built.database_url
        with metrics_folder():
            uvicorn.run(
                FACTORY,
                factory=True,
                host=host,
                port=port,
                workers=workers,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                **options,
            )
        return
    from ..api.app import create_app
    from ..metrics import PrometheusMetrics
    from ..service import BudgetService

    exported = PrometheusMetrics(max_tenants=built.metrics_max_tenants)
    clock = None if started_at is None else running_clock(started_at)
    with cli_errors(), BudgetService(built, metrics=exported, clock=clock) as service:
        uvicorn.run(
            create_app(service, metrics=exported),
            host=host,
            port=port,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            **options,
        )


def running_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that reads ``start`` now and runs on in real time from there."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


METRICS_PREFIX = "jobbudget-metrics-"


@contextlib.contextmanager
def metrics_folder() -> Iterator[None]:
    """Where the workers write their metrics for /metrics to merge
    (``PROMETHEUS_MULTIPROC_DIR``).  One set by the operator is used as it is; else a
    temporary folder named after this process, removed when the server stops (and,
    if this process was killed, by the next ``serve`` to start)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    remove_abandoned_metrics_folders()
    folder = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(folder, ignore_errors=True)


def remove_abandoned_metrics_folders() -> None:
    """Remove the metrics folders of servers that no longer run (killed)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*"):
        pid = folder.name[len(METRICS_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or _running(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
