"""The terminal UI: five tabs (Overview, Trends, Controls, Alerts, Platform) over one
:class:`~jobbudget.tui.source.DataSource`.

The UI thread never touches the database or the network: every read and write runs in
a thread worker (:meth:`JobBudgetApp.call_source`) and hands its result back to the UI
thread.  A poll every ``refresh_seconds`` reads the dashboard and the alerts and
redraws only when something changed; ``r`` redraws at once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Input, TabbedContent, TabPane, TextArea

from ..domain.alerts import Alert
from ..domain.dashboard import Dashboard
from ..domain.errors import JobBudgetError
from .alerts import AlertsPane
from .controls import ControlsPane
from .help import HelpScreen
from .overview import OverviewPane
from .platform import PlatformPane
from .source import DataSource, PlatformView
from .trends import TrendsPane

__all__ = ["JobBudgetApp", "TuiData"]

log = logging.getLogger("jobbudget.tui")
T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TuiData:
    """One poll's worth of data, handed to every pane."""

    dashboard: Dashboard
    alerts: tuple[Alert, ...]
    platform: PlatformView = field(default_factory=PlatformView)

    def same_as(self, other: TuiData | None) -> bool:
        """Equal apart from the moment it was read."""
        if other is None:
            return False
        return (
            replace(self.dashboard, generated_at=_EPOCH) == replace(other.dashboard, generated_at=_EPOCH)
            and self.alerts == other.alerts
            and self.platform == other.platform
        )


class JobBudgetApp(App[None]):
    """``jobbudget tui``: see, steer and acknowledge budgets."""

    TITLE = "jobbudget"
    CSS_PATH = "app.tcss"
    AUTO_FOCUS = None  # action_show_tab chooses the focus: never a text field (it would eat 1-4)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "show_tab('overview')", "Overview", show=False),  # the tab titles show the number
        Binding("2", "show_tab('trends')", "Trends", show=False),
        Binding("3", "show_tab('controls')", "Controls", show=False),
        Binding("4", "show_tab('alerts')", "Alerts", show=False),
        Binding("5", "show_tab('platform')", "Platform", show=False),
        Binding("r", "refresh_data", "Refresh"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "leave_field", "Leave the field", show=False),
    ]

    def __init__(
        self,
        source: DataSource,
        *,
        tenant_id: str | None = None,
        refresh_seconds: float = 1.0,
        actor: str = "tui",
    ) -> None:
        super().__init__()
        self.source = source
        self.tenant_id = tenant_id
        self.actor = actor
        self.refresh_seconds = refresh_seconds
        self.data: TuiData | None = None
        self.last_error: str | None = None
        self._polling = False
        self._again = False
        self.sub_title = source.label

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="overview"):
            with TabPane("1 Overview", id="overview"):
                yield OverviewPane()
            with TabPane("2 Trends", id="trends"):
                yield TrendsPane()
            with TabPane("3 Controls", id="controls"):
                yield ControlsPane()
            with TabPane("4 Alerts", id="alerts"):
                yield AlertsPane()
            with TabPane("5 Platform", id="platform"):
                yield PlatformPane()
        yield Footer()

    def on_mount(self) -> None:
        self.action_show_tab("overview")
        self.poll()
        if self.refresh_seconds > 0:
            self.set_interval(self.refresh_seconds, self.poll)

    # -- data ---------------------------------------------------------------------
    def poll(self, *, force: bool = False) -> None:
        """Read the dashboard and the alerts in a worker; redraw when they changed."""
        if self._polling:
            self._again = self._again or force  # a forced refresh waits for the read in flight
            return
        self._polling = True
        tenant = self.tenant_id

        def read(source: DataSource) -> TuiData:
            dashboard = source.dashboard(tenant)
            alerts = source.alerts(limit=200)
            if tenant is not None:
                alerts = [a for a in alerts if a.event.tenant_id == tenant]
            platform = source.platform()
            if tenant is not None:
                platform = replace(
                    platform, adjustments=tuple(a for a in platform.adjustments if a.tenant_id == tenant)
                )
            return TuiData(dashboard=dashboard, alerts=tuple(alerts), platform=platform)

        def done(data: TuiData) -> None:
            self._set_error(None)
            if force or not data.same_as(self.data):
                self.data = data
                self._show(data)
            self._poll_done()

        def failed(exc: JobBudgetError) -> None:
            self._set_error(str(exc))
            self._poll_done()

        self.call_source(read, done=done, failed=failed)

    def _poll_done(self) -> None:
        self._polling = False
        if self._again:
            self._again = False
            self.poll(force=True)

    def _show(self, data: TuiData) -> None:
        self.query_one(OverviewPane).show(data)
        self.query_one(TrendsPane).show(data)
        self.query_one(ControlsPane).show(data)
        self.query_one(AlertsPane).show(data)
        self.query_one(PlatformPane).show(data.platform)

    def _set_error(self, message: str | None) -> None:
        if message == self.last_error:
            return
        self.last_error = message
        if message is not None:
            self.notify(message, title="Cannot read data", severity="error", timeout=8)
        self.sub_title = self.source.label if message is None else f"{self.source.label} (unreachable)"

    def call_source(
        self,
        fn: Callable[[DataSource], T],
        *,
        done: Callable[[T], None],
        failed: Callable[[JobBudgetError], None] | None = None,
    ) -> None:
        """Run ``fn(source)`` in a thread worker, then ``done(result)`` (or
        ``failed(error)``) on the UI thread.  Errors other than the library's own are
        logged and shown as a notification rather than crashing the UI."""

        def work() -> None:
            try:
                result = fn(self.source)
            except JobBudgetError as exc:
                self._deliver(failed or self._notify_error, exc)
                return
            except Exception as exc:  # a bug or an unexpected answer: keep the UI alive
                log.exception("tui data call failed")
                self._deliver(failed or self._notify_error, JobBudgetError(f"{type(exc).__name__}: {exc}"))
                return
            self._deliver(done, result)

        self.run_worker(work, thread=True, exit_on_error=False)

    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the app has already exited
            self.call_from_thread(callback, value)

    def _notify_error(self, exc: JobBudgetError) -> None:
        self.notify(str(exc), title="Error", severity="error", timeout=8)

    # -- actions ------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_in(tab)  # focus left in the old tab would switch back to it

    def action_leave_field(self) -> None:
        """Escape: out of a text field, which takes the number keys as text, so that
        1-5 switch tabs again."""
        if isinstance(self.focused, Input | TextArea) and not self._focus_in(self.query_one(TabbedContent).active):
            self.set_focus(None)

    def _focus_in(self, tab: str) -> bool:
        """Focus a table of ``tab`` where there is one, else its first other focusable
        widget; never a text field, which would swallow the number keys that switch
        tabs.  False if there was nothing to focus."""
        pane = self.query_one(f"#{tab}", TabPane)
        focusable = [w for w in pane.query("*") if w.focusable and w.display and not isinstance(w, Input | TextArea)]
        focusable.sort(key=lambda w: not isinstance(w, DataTable))
        if focusable:
            focusable[0].focus()
        return bool(focusable)

    def action_refresh_data(self) -> None:
        self.poll(force=True)
        for pane in self.query(TrendsPane):
            pane.reload()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
