"""``jobbudget tui``: the terminal UI on the local database or on a server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from .common import AtOption, ConfigOption, DatabaseOption, Settings, cli_errors, open_service, parse_at

if TYPE_CHECKING:
    from ..tui.app import JobBudgetApp

__all__ = ["local_app", "tui"]


@contextlib.contextmanager
def local_app(
    settings: Settings, *, at: str | None = None, tenant: str | None = None, refresh: float = 1.0
) -> Iterator[JobBudgetApp]:
    """The UI on the local database (``jobbudget tui`` without ``--url``), with its own
    service, closed when the block ends.  ``at`` changes what is shown, never when
    things happen: the service keeps the real clock, so what is written from the UI
    (and by the service's background work) is stamped now."""
    from ..tui.app import JobBudgetApp
    from ..tui.source import LocalSource

    shown_at = parse_at(at)
    with open_service(settings) as service:
        yield JobBudgetApp(LocalSource(service, at=shown_at), tenant_id=tenant, refresh_seconds=refresh)


def tui(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="A jobbudget server (e.g. http://host:8080) instead of the local database.",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="JOBBUDGET_API_KEY",
            metavar="KEY",
            help="The API key for --url (or $JOBBUDGET_API_KEY). Never shown on screen.",
            show_default=False,
        ),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's budgets, drivers and alerts.")] = None,
    refresh: Annotated[float, typer.Option(min=0.2, max=3600, help="Seconds between checks for new data.")] = 1.0,
    at: AtOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Open the terminal UI: see, steer and acknowledge budgets.

    Tabs: 1 Overview (budgets, status, cost drivers), 2 Trends (30-day chart, pace,
    forecast, cost by component), 3 Controls (create, edit, deactivate budgets, test
    notifications), 4 Alerts (violations, acknowledge, delivery status).  r refreshes,
    ? shows every key, q quits.  Works on the local database (the default, or
    --database-url) or on a server with --url and --api-key.  --at shows the local
    database as of a past moment; what you change there still happens now.
    """
    try:
        from ..tui.app import JobBudgetApp
        from ..tui.source import DataSource, RemoteSource
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        typer.echo(f"The terminal UI needs Textual: pip install 'jobbudget[tui]' ({exc})", err=True)
        raise typer.Exit(2) from None
    settings = Settings(config, database_url, False)
    with cli_errors():
        if url is not None:
            if not api_key:
                typer.echo("--url needs --api-key (or $JOBBUDGET_API_KEY)", err=True)
                raise typer.Exit(2)
            if at is not None:  # the API has no "as of": the UI would show the server's now
                typer.echo("--at works on the local database only, not with --url", err=True)
                raise typer.Exit(2)
            source: DataSource = RemoteSource(url, api_key=api_key)
            try:
                JobBudgetApp(source, tenant_id=tenant, refresh_seconds=refresh).run()
            finally:
                source.close()
            return
        with local_app(settings, at=at, tenant=tenant, refresh=refresh) as app:
            app.run()
