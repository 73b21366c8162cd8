"""The Alerts tab: every alert of the visible budgets, newest first, as a table that
shows the active ones (not yet acknowledged) or, with ``h``, the whole history.  ``a``
acknowledges the selected alert.  Below the table, the selected alert's numbers and
one row per delivery (the channel's target already redacted by the source)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static

from ..domain.alerts import Alert, DeliveryState

if TYPE_CHECKING:
    from .app import JobBudgetApp, TuiData

__all__ = ["EMPTY_ACTIVE", "EMPTY_HISTORY", "TYPE_STYLES", "AlertsPane"]

EMPTY_ACTIVE = "No active alerts. Budgets are within their thresholds."
EMPTY_HISTORY = "No alerts yet"
#: The colour of each alert type (other types are shown plain).
TYPE_STYLES = {"warning": "bold yellow", "throttle": "bold dark_orange", "block": "bold red"}
#: Alerts of the same moment: the most severe first.
_SEVERITY = {"block": 0, "throttle": 1, "warning": 2, "forecast_overrun": 3, "bypass": 4, "reset": 5}
_STATUS_STYLES = {"sent": "green", "failed": "red", "held": "yellow", "pending": "", "sending": "cyan"}


def _when(moment: datetime | None, *, full: bool = False) -> str:
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if full else "%m-%d %H:%M").strip()


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _percent(value: object) -> str:
    try:
        return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def _order(alert: Alert) -> tuple[float, str, str, int, str]:
    """Newest first; alerts of the same moment in a stable order (the source's order
    of ties is arbitrary, and rows must not jump between refreshes)."""
    e = alert.event
    return (-e.occurred_at.timestamp(), e.tenant_id, e.queue_name, _SEVERITY.get(e.type, 9), e.id)


def type_label(kind: str) -> Text:
    """The alert type in its colour."""
    return Text(kind, style=TYPE_STYLES.get(kind, ""))


def ack_label(alert: Alert) -> Text:
    if alert.acknowledged_at is None:
        return Text("active", style="bold")
    by = _short(alert.acknowledged_by or "?", 12)
    return Text(f"{by} {_when(alert.acknowledged_at)}", style="dim")


def delivery_when(delivery: DeliveryState) -> str:
    if delivery.sent_at is not None:
        return f"sent {_when(delivery.sent_at)}"
    if delivery.next_attempt_at is not None:
        return f"next {_when(delivery.next_attempt_at)}"
    return "-"


def detail_text(alert: Alert) -> Text:
    """The selected alert's numbers, a few lines."""
    event = alert.event
    scope = f"{event.tenant_id}/{event.queue_name}" if event.queue_name else f"{event.tenant_id} (all queues)"
    text = Text()
    text.append(event.type, style=TYPE_STYLES.get(event.type, "bold"))
    text.append(f"  {scope}  {_when(event.occurred_at, full=True)}\n")
    text.append(
        f"spend {event.current_spend:,.2f} of {event.budget_amount:,.2f} {event.currency}"
        f" ({_percent(event.utilization)})  period {event.period_start}..{event.period_end}"
    )
    if event.forecast_spend is not None:
        text.append(f"  forecast {event.forecast_spend:,.2f} {event.currency}")
    text.append("\n")
    if alert.acknowledged_at is not None:
        text.append(
            f"acknowledged by {alert.acknowledged_by or '?'} at {_when(alert.acknowledged_at, full=True)}\n",
            style="dim",
        )
    text.append(event.message or "", style="italic")
    if not alert.deliveries:
        text.append("\nno deliveries (no channel subscribed to this event)", style="dim")
    return text


class AlertsPane(Vertical):
    """The Alerts tab (see the module's docstring)."""

    DEFAULT_CSS = """
    AlertsPane { height: 1fr; }
    AlertsPane #alerts-title { height: 1; text-style: bold; }
    AlertsPane #alerts-table { height: 1fr; min-height: 4; }
    AlertsPane #alerts-detail { height: auto; max-height: 6; padding: 0 1; border-top: solid $primary-darken-2; }
    AlertsPane #alerts-deliveries { height: auto; max-height: 5; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "toggle_history", "Active/history"),
        Binding("a", "acknowledge", "Acknowledge"),
    ]

    can_focus = True  # keeps ``h`` working while the table is hidden (empty view)

    def __init__(self) -> None:
        super().__init__()
        self.show_history = False
        self.alerts: tuple[Alert, ...] = ()
        self._loaded = False
        self._acknowledging: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static("Alerts", id="alerts-title")
        yield Static("Loading alerts…", id="alerts-empty", classes="empty")
        table: DataTable[str | Text] = DataTable(id="alerts-table", cursor_type="row", zebra_stripes=True)
        table.add_column("When", key="when")
        table.add_column("Tenant", key="tenant")
        table.add_column("Queue", key="queue")
        table.add_column("Type", key="type")
        table.add_column("Spend/amount", key="spend")
        table.add_column("Util", key="util")
        table.add_column("Acknowledged", key="ack")
        yield table
        yield Static("", id="alerts-detail")
        deliveries: DataTable[str | Text] = DataTable(id="alerts-deliveries", cursor_type="none")
        deliveries.can_focus = False
        for label in ("Channel", "Target", "Status", "Tries", "When", "Last error"):
            deliveries.add_column(label, key=label.lower())
        yield deliveries

    def on_mount(self) -> None:
        self._redraw()

    def on_show(self) -> None:
        """Keys ``a`` and ``h`` reach the pane through the focused table (or the
        pane itself while the table is hidden)."""
        table = self._table()
        target = table if table.display else self
        if self.app.focused is not target:
            target.focus()

    # -- data ---------------------------------------------------------------------
    def show(self, data: TuiData) -> None:
        """Redraw with fresh data (``data.alerts`` newest first)."""
        self.alerts = tuple(sorted(data.alerts, key=_order))
        self._loaded = True
        self._redraw()

    def reload(self) -> None:
        self._app().poll(force=True)

    def shown_alerts(self) -> list[Alert]:
        """The alerts of the current view, newest first."""
        if self.show_history:
            return list(self.alerts)
        return [a for a in self.alerts if a.acknowledged_at is None]

    def selected(self) -> Alert | None:
        """The alert under the table's cursor."""
        table = self._table()
        if not table.display or table.row_count == 0 or not table.is_valid_row_index(table.cursor_row):
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return self._find(key)

    def _find(self, alert_id: str | None) -> Alert | None:
        return next((a for a in self.alerts if a.event.id == alert_id), None)

    # -- drawing ------------------------------------------------------------------
    def _table(self) -> DataTable[str | Text]:
        return cast("DataTable[str | Text]", self.query_one("#alerts-table", DataTable))

    def _redraw(self) -> None:
        table = self._table()
        keep = self.selected()
        keep_id = keep.event.id if keep is not None else None
        rows = self.shown_alerts()
        active = sum(1 for a in self.alerts if a.acknowledged_at is None)
        view = "history" if self.show_history else "active"
        other = "active only" if self.show_history else "history"
        self.query_one("#alerts-title", Static).update(
            f"Alerts: {view} ({len(rows)} shown, {active} active)  [h] {other}  [a] acknowledge"
        )
        had_focus = self.app.focused in (table, self)
        table.clear()
        for alert in rows:
            event = alert.event
            table.add_row(
                _when(event.occurred_at),
                _short(event.tenant_id, 14),
                _short(event.queue_name or "(all)", 14),
                type_label(event.type),
                f"{event.current_spend:,.2f}/{event.budget_amount:,.2f}",
                _percent(event.utilization),
                ack_label(alert),
                key=event.id,
            )
        empty = self.query_one("#alerts-empty", Static)
        has_rows = bool(rows)
        if not self._loaded:
            empty.update("Loading alerts…")
        else:
            empty.update(EMPTY_HISTORY if self.show_history or not self.alerts else EMPTY_ACTIVE)
        empty.display = not has_rows
        if not has_rows and table.has_focus:
            self.focus()  # keep the focus in this tab, off any text field
        table.display = has_rows
        if has_rows:
            index = next((i for i, a in enumerate(rows) if a.event.id == keep_id), 0)
            table.move_cursor(row=index, animate=False)
        if had_focus or (self.is_on_screen and self.app.focused is None):
            (table if has_rows else self).focus()
        self._show_detail(rows[min(table.cursor_row, len(rows) - 1)] if has_rows else None)

    def _show_detail(self, alert: Alert | None) -> None:
        detail = self.query_one("#alerts-detail", Static)
        deliveries = cast("DataTable[str | Text]", self.query_one("#alerts-deliveries", DataTable))
        deliveries.clear()
        detail.display = deliveries.display = alert is not None
        if alert is None:
            detail.update("")
            return
        detail.update(detail_text(alert))
        for d in alert.deliveries:
            deliveries.add_row(
                d.channel_type,
                _short(d.target, 40),  # already redacted by the source
                Text(d.status, style=_STATUS_STYLES.get(d.status, "")),
                str(d.attempts),
                delivery_when(d),
                _short(d.last_error or "", 60),
                key=str(d.id),
            )
        deliveries.display = bool(alert.deliveries)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "alerts-table":
            return
        event.stop()
        self._show_detail(self._find(event.row_key.value))

    # -- actions ------------------------------------------------------------------
    def _app(self) -> JobBudgetApp:
        return cast("JobBudgetApp", self.app)

    def action_toggle_history(self) -> None:
        self.show_history = not self.show_history
        self._redraw()

    def action_acknowledge(self) -> None:
        alert = self.selected()
        if alert is None:
            self.notify("No alert selected.", severity="warning")
            return
        if alert.acknowledged_at is not None:
            self.notify(f"Already acknowledged by {alert.acknowledged_by}.", severity="information")
            return
        alert_id = alert.event.id
        if alert_id in self._acknowledging:
            return
        self._acknowledging.add(alert_id)
        app = self._app()
        actor = app.actor

        def done(_: None) -> None:
            self._acknowledging.discard(alert_id)
            self.notify(f"Acknowledged the {alert.event.type} alert of {alert.event.tenant_id}.")
            app.poll(force=True)

        def failed(exc: Exception) -> None:
            self._acknowledging.discard(alert_id)
            self.notify(str(exc), title="Cannot acknowledge", severity="error", timeout=8)

        app.call_source(lambda s: s.acknowledge(alert_id, by=actor), done=done, failed=failed)
