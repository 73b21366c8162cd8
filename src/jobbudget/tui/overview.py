"""Tab 1, Overview: every budget with its spend, a utilization bar and a status
badge, and the month's top cost drivers; sortable (``s`` or a click on a header) and
filterable by tenant (``/``).  Enter opens the budget in Trends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Input, Static, TabbedContent

from ..domain.dashboard import BudgetView, Dashboard, DriverView
from .widgets import SEVERITY, badge, bar, money, period_text, queue_text

if TYPE_CHECKING:
    from .app import TuiData

__all__ = ["OverviewPane", "SORTS"]

#: (column label, sort key) in column order; ``s`` cycles through them.
SORTS: tuple[tuple[str, Callable[[BudgetView], Any]], ...] = (
    ("Tenant", lambda v: (v.budget.tenant_id, v.budget.queue_name)),
    ("Queue", lambda v: (v.budget.queue_name, v.budget.tenant_id)),
    ("Status", lambda v: (SEVERITY.get(v.status, 9), -v.utilization)),
    ("Utilization", lambda v: -v.utilization),
    ("Spend", lambda v: -v.spend),
    ("Amount", lambda v: -v.amount_in_force),
    ("Period", lambda v: (v.period_start or v.budget.period.start_date or date.min, v.budget.tenant_id)),
)


class OverviewPane(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="overview-pane")
        self.sort_index = 2  # most severe first: what an operator looks for
        self.tenant_filter = ""
        self._dashboard: Dashboard | None = None
        self._row_ids: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("Loading…", id="overview-summary")
        yield Input(placeholder="filter by tenant (press /)", id="tenant-filter", compact=True)
        yield Static("", id="overview-empty", classes="empty")
        table: DataTable[Any] = DataTable(id="budgets-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("Top cost drivers this month", classes="section-title")
        yield Static("", id="drivers-empty", classes="empty")
        drivers: DataTable[Any] = DataTable(id="drivers-table", cursor_type="row")
        yield drivers

    def on_mount(self) -> None:
        budgets = self.query_one("#budgets-table", DataTable)
        for label, _ in SORTS:
            budgets.add_column(label, key=label)
        drivers = self.query_one("#drivers-table", DataTable)
        for label in ("Tenant", "Queue", "Jobs", "Cost", "Avg / job", "Share"):
            drivers.add_column(label, key=label)

    # -- data ---------------------------------------------------------------------
    def show(self, data: TuiData) -> None:
        self._dashboard = data.dashboard
        self._redraw()

    def reload(self) -> None:
        self._redraw()

    def visible_budgets(self) -> list[BudgetView]:
        if self._dashboard is None:
            return []
        wanted = self.tenant_filter.strip().lower()
        views = [v for v in self._dashboard.budgets if wanted in v.budget.tenant_id.lower()]
        _, key = SORTS[self.sort_index]
        return sorted(views, key=lambda v: (key(v), v.budget.tenant_id, v.budget.queue_name, v.budget.id or ""))

    def visible_drivers(self) -> list[DriverView]:
        if self._dashboard is None:
            return []
        wanted = self.tenant_filter.strip().lower()
        return [d for d in self._dashboard.drivers if wanted in d.tenant_id.lower()]

    def _redraw(self) -> None:
        dashboard = self._dashboard
        if dashboard is None:
            return
        self._render_summary(dashboard)
        self._render_budgets()
        self._render_drivers()

    def _render_summary(self, dashboard: Dashboard) -> None:
        counts: dict[str, int] = {}
        for view in dashboard.budgets:
            counts[view.status] = counts.get(view.status, 0) + 1
        summary = Text()
        summary.append(f"{len(dashboard.budgets)} budgets  ")
        for status in ("Block", "Throttle", "Warning", "OK"):
            if counts.get(status):
                summary.append_text(badge(f"{counts[status]} {status}"))
                summary.append(" ")
        summary.append(
            f"  month to date ({dashboard.since:%b %d}–{dashboard.until:%b %d}, UTC): "
            f"{money(dashboard.total_spend)} over {dashboard.total_jobs:,} jobs"
        )
        if dashboard.active_alerts:
            summary.append(f"  {dashboard.active_alerts} active alerts (press 4)", style="bold yellow")
        sort_label = SORTS[self.sort_index][0]
        summary.append(f"\nsorted by {sort_label}", style="grey50")
        if self.tenant_filter:
            summary.append(f", tenant contains {self.tenant_filter!r}", style="grey50")
        self.query_one("#overview-summary", Static).update(summary)

    def _render_budgets(self) -> None:
        table = self.query_one("#budgets-table", DataTable)
        views = self.visible_budgets()
        selected = self.selected_budget_id()
        table.clear()
        self._row_ids = []
        for view in views:
            b = view.budget
            table.add_row(
                b.tenant_id,
                queue_text(b),
                badge(view.status),
                bar(view.utilization, view.status),
                Text(money(view.spend), justify="right"),
                Text(
                    money(view.amount_in_force) if b.currency == "USD" else money(view.amount_in_force, b.currency),
                    justify="right",
                ),
                period_text(b, view.period_start, view.period_end),
                key=b.id,
            )
            self._row_ids.append(b.id or "")
        if selected in self._row_ids:
            table.move_cursor(row=self._row_ids.index(selected))
        empty = self.query_one("#overview-empty", Static)
        if not views:
            if self._dashboard is not None and self._dashboard.budgets:
                empty.update(f"No budget of a tenant matching {self.tenant_filter!r}: press Escape to clear.")
            else:
                empty.update("No budgets yet: press 3 to create one (or `jobbudget budget create --help`).")
        else:
            empty.update("")
        empty.display = not views
        if not views and table.has_focus:
            self.focus()  # not the filter, which would take the number keys that switch tabs
        table.display = bool(views)

    def _render_drivers(self) -> None:
        table = self.query_one("#drivers-table", DataTable)
        drivers = self.visible_drivers()
        table.clear()
        for d in drivers:
            table.add_row(
                d.tenant_id,
                d.queue_name or "(none)",
                Text(f"{d.job_count:,}", justify="right"),
                Text(money(d.total_cost), justify="right"),
                Text(money(d.avg_cost, ""), justify="right"),
                Text(f"{d.percentage:.1f}%", justify="right"),
            )
        empty = self.query_one("#drivers-empty", Static)
        empty.update("" if drivers else "No jobs priced this month yet: send jobs with `jobbudget ingest` or the API.")
        empty.display = not drivers
        if not drivers and table.has_focus:
            self.focus()
        table.display = bool(drivers)

    def selected_budget_id(self) -> str | None:
        table = self.query_one("#budgets-table", DataTable)
        if not self._row_ids or table.cursor_row < 0 or table.cursor_row >= len(self._row_ids):
            return None
        return self._row_ids[table.cursor_row]

    # -- actions ------------------------------------------------------------------
    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self._redraw()

    def action_filter(self) -> None:
        self.query_one("#tenant-filter", Input).focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#tenant-filter", Input)
        field.value = ""
        self.query_one("#budgets-table", DataTable).focus()

    @on(Input.Changed, "#tenant-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.tenant_filter = event.value
        self._redraw()

    @on(Input.Submitted, "#tenant-filter")
    def _filter_done(self) -> None:
        self.query_one("#budgets-table", DataTable).focus()

    @on(DataTable.HeaderSelected, "#budgets-table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        labels = [label for label, _ in SORTS]
        if str(event.column_key.value) in labels:
            self.sort_index = labels.index(str(event.column_key.value))
            self._redraw()

    @on(DataTable.RowSelected, "#budgets-table")
    def _open_trends(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is None:
            return
        from .trends import TrendsPane

        self.app.query_one(TabbedContent).active = "trends"
        pane = self.app.query_one(TrendsPane)
        pane.select(str(event.row_key.value))
        pane.focus()  # focus left behind in this tab would switch back to it
