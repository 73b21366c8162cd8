"""Tab 2, Trends: for the selected budget, 30 days of daily spend with the daily pace
and the forecast band, the cost by component, the trend and the weekly pattern."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Select, Static

from ..domain.dashboard import BudgetTrends, BudgetView
from ..domain.errors import JobBudgetError
from .widgets import SEVERITY, badge, daily_chart, money, queue_text, weekday_pattern

if TYPE_CHECKING:
    from .app import JobBudgetApp, TuiData
    from .source import DataSource

__all__ = ["TREND_DAYS", "TrendsPane", "trends_summary"]

TREND_DAYS = 30
_TREND_WORDS = {"increasing": "rising ↗", "decreasing": "falling ↘", "stable": "steady →"}


def trends_summary(trends: BudgetTrends, view: BudgetView | None) -> Text:
    """Two lines above the chart: the scope and status, then the forecast."""
    b = trends.budget
    out = Text()
    out.append(f"{b.tenant_id} / {queue_text(b)}", style="bold")
    out.append(f"  {b.period.type} budget {money(b.amount, b.currency)}  ")
    if view is not None:
        out.append_text(badge(view.status))
        out.append(f"  spent {money(view.spend)} ({view.utilization * 100:.1f}%)")
    out.append("\n")
    f = trends.forecast
    if f is None:
        out.append("Forecast: not enough history in this period yet.", style="grey50")
        return out
    out.append(f"Forecast to {f.period_end}: ")
    style = "bold red" if f.predicted_spend > f.budget_amount else "bold green"
    out.append(money(f.predicted_spend, b.currency), style=style)
    out.append(f" ({f.budget_utilization * 100:.0f}% of budget; 80% {money(f.lower_80)}–{money(f.upper_80)})")
    if f.days_until_overrun is not None:
        out.append(
            "  over budget already" if f.days_until_overrun == 0 else f"  overrun in {f.days_until_overrun} days",
            style="bold red",
        )
    return out


def breakdown_table(trends: BudgetTrends) -> Table:
    table = Table(title=f"Cost by component, last {len(trends.daily)} days", title_justify="left", box=None)
    table.add_column("Component")
    table.add_column("Cost", justify="right")
    table.add_column("Share", justify="right")
    table.add_column("")
    for share in trends.components:
        width = int(share.percentage / 5)  # 20 characters for 100 %
        table.add_row(share.name, money(share.cost), f"{share.percentage:.1f}%", Text("█" * width, style="cyan"))
    for line in trends.resources:  # the named resources within "Resources"
        width = int(line.percentage / 5)
        table.add_row(
            Text(f"  {line.name}", style="grey70"),
            money(line.cost),
            f"{line.percentage:.1f}%",
            Text("█" * width, style="magenta"),
        )
    table.add_row(Text("Total", style="bold"), Text(money(trends.total), style="bold"), "", f"{trends.jobs:,} jobs")
    return table


def pattern_text(trends: BudgetTrends) -> Text:
    out = Text()
    f = trends.forecast
    if f is None:
        out.append("Trend: not enough history yet.", style="grey50")
        return out
    out.append("Trend: ", style="bold")
    out.append(_TREND_WORDS.get(f.trend_direction, f.trend_direction))
    out.append(f"   (forecast method: {f.method})\n", style="grey50")
    out.append("Weekly pattern: ", style="bold")
    out.append_text(weekday_pattern(f.day_of_week_factors))
    return out


class TrendsPane(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left_square_bracket", "step(-1)", "Prev budget", key_display="["),
        Binding("right_square_bracket", "step(1)", "Next budget", key_display="]"),
    ]

    def __init__(self) -> None:
        super().__init__(id="trends-pane")
        self.budget_id: str | None = None
        self.trends: BudgetTrends | None = None
        self._views: dict[str, BudgetView] = {}
        self._options: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Select[str]([], prompt="Choose a budget", id="trend-budget", allow_blank=True)
        yield Static("No budgets yet: press 3 to create one.", id="trends-summary")
        yield Static("", id="trends-chart")
        yield Static("", id="trends-breakdown")
        yield Static("", id="trends-pattern")

    @property
    def _app(self) -> JobBudgetApp:
        return cast("JobBudgetApp", self.app)

    def show(self, data: TuiData) -> None:
        views = sorted(
            (v for v in data.dashboard.budgets if v.budget.id is not None),
            key=lambda v: (SEVERITY.get(v.status, 9), -v.utilization, v.budget.tenant_id, v.budget.queue_name),
        )
        self._views = {str(v.budget.id): v for v in views}
        options = [
            (f"{v.budget.tenant_id} / {queue_text(v.budget)} ({v.budget.period.type})", str(v.budget.id)) for v in views
        ]
        if options != self._options:
            self._options = options
            select = cast("Select[str]", self.query_one("#trend-budget", Select))
            with select.prevent(Select.Changed):
                select.set_options(options)
                if self.budget_id in self._views:
                    select.value = self.budget_id
        if self.budget_id not in self._views:
            self.budget_id = None
            if views:  # the most pressing budget first
                self.select(str(views[0].budget.id))
                return
        self.reload()

    def select(self, budget_id: str) -> None:
        """Show ``budget_id`` (from the Overview's Enter, or the picker)."""
        self.budget_id = budget_id
        select = cast("Select[str]", self.query_one("#trend-budget", Select))
        if budget_id in self._views and select.value != budget_id:
            with select.prevent(Select.Changed):
                select.value = budget_id
        self.reload()

    def reload(self) -> None:
        budget_id = self.budget_id
        if budget_id is None:
            self.query_one("#trends-summary", Static).update(
                "No budgets yet: press 3 to create one." if not self._views else "Choose a budget above."
            )
            for name in ("chart", "breakdown", "pattern"):
                self.query_one(f"#trends-{name}", Static).update("")
            return

        def read(source: DataSource) -> BudgetTrends:
            return source.trends(budget_id, days=TREND_DAYS)

        def done(trends: BudgetTrends) -> None:
            if trends.budget.id == self.budget_id:
                self.trends = trends
                self._redraw()

        def failed(exc: JobBudgetError) -> None:
            self.query_one("#trends-summary", Static).update(Text(f"Cannot read trends: {exc}", style="red"))

        self._app.call_source(read, done=done, failed=failed)

    def _redraw(self) -> None:
        trends = self.trends
        if trends is None:
            return
        view = self._views.get(str(trends.budget.id))
        self.query_one("#trends-summary", Static).update(trends_summary(trends, view))
        chart = daily_chart(
            trends.daily,
            pace=trends.daily_pace,
            forecast=trends.forecast,
            currency=trends.budget.currency,
            width=self.app.size.width - 4,
        )
        self.query_one("#trends-chart", Static).update(chart)
        self.query_one("#trends-breakdown", Static).update(breakdown_table(trends))
        self.query_one("#trends-pattern", Static).update(pattern_text(trends))

    def action_step(self, delta: int) -> None:
        ids = [value for _, value in self._options]
        if not ids:
            return
        current = ids.index(self.budget_id) if self.budget_id in ids else -1
        self.select(ids[(current + delta) % len(ids)])

    @on(Select.Changed, "#trend-budget")
    def _picked(self, event: Select.Changed) -> None:
        value: Any = event.value
        if isinstance(value, str) and value != self.budget_id:
            self.select(value)
