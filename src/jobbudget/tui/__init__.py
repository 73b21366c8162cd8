"""The terminal UI (``jobbudget tui``).  Needs the ``tui`` extra (Textual); nothing
else in jobbudget imports this package."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import JobBudgetApp

__all__ = ["JobBudgetApp", "run_tui"]


def __getattr__(name: str) -> object:
    if name == "JobBudgetApp":
        from .app import JobBudgetApp

        return JobBudgetApp
    raise AttributeError(name)


def run_tui(source: object, *, tenant_id: str | None = None, refresh_seconds: float = 1.0) -> None:
    """Run the UI on ``source`` (a :class:`~jobbudget.tui.source.DataSource`) until
    the user quits."""
    from .app import JobBudgetApp

    JobBudgetApp(source, tenant_id=tenant_id, refresh_seconds=refresh_seconds).run()  # type: ignore[arg-type]
