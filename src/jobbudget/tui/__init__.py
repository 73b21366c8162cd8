"""The terminal UI (``jobbudget tui``).  Needs the ``tui`` extra (Textual); nothing
else in jobbudget imports this package (the service does not either: a test checks
it).  From Python, :func:`run` opens it on a service in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..service import BudgetService
    from .app import JobBudgetApp
    from .source import DataSource

__all__ = ["JobBudgetApp", "run", "run_tui"]


def __getattr__(name: str) -> object:
    if name == "JobBudgetApp":
        from .app import JobBudgetApp

        return JobBudgetApp
    raise AttributeError(name)


def run(service: BudgetService, *, tenant_id: str | None = None, refresh_seconds: float = 1.0) -> None:
    """Run the terminal UI on ``service`` until the user quits (what ``jobbudget tui``
    does on the local database; the service stays open: closing it is the caller's).
    The design document's ``StartTUI``."""
    from .source import LocalSource

    run_tui(LocalSource(service), tenant_id=tenant_id, refresh_seconds=refresh_seconds)


def run_tui(source: DataSource, *, tenant_id: str | None = None, refresh_seconds: float = 1.0) -> None:
    """Run the UI on ``source`` (a :class:`~jobbudget.tui.source.DataSource`: local or
    a server's HTTP API) until the user quits."""
    from .app import JobBudgetApp

    JobBudgetApp(source, tenant_id=tenant_id, refresh_seconds=refresh_seconds).run()
