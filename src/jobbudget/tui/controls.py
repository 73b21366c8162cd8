"""The Controls tab: pick a budget (or a new one), edit it in a form, save, deactivate
or send a test message through one of its channels.

Every read and write goes through :meth:`JobBudgetApp.call_source` (a thread worker);
errors a save is refused with appear under the field they name, and from then on every
change re-checks the form, so a fixed field's error goes at once.  Channels are shown
redacted: left unchanged, a save keeps the stored ones with their secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select, TextArea
from textual.widgets.data_table import CellDoesNotExist

from ..domain.budget import Budget
from ..domain.errors import JobBudgetError, ValidationError
from ..domain.periods import PERIOD_TYPES
from .forms import (
    FIELDS,
    FORM_FIELDS,
    SWITCHES,
    budget_values,
    channel_index,
    check_form,
    form_field,
    new_values,
    parse_draft,
)
from .source import DataSource
from .widgets import badge, money

if TYPE_CHECKING:
    from .app import JobBudgetApp, TuiData

__all__ = ["ControlsPane"]

T = TypeVar("T")
NEW_ROW = "__new__"
EMPTY_TEXT = "No budgets yet: fill in the form below and press Ctrl+S to save the first one."


class ControlsPane(Vertical):
    """Create, change, deactivate and test budgets."""

    DEFAULT_CSS = """
    ControlsPane { height: 1fr; }
    ControlsPane #budget-table { height: auto; max-height: 7; }
    ControlsPane #controls-empty { color: $text-muted; }
    ControlsPane #controls-bar { height: auto; }
    ControlsPane #controls-bar Button { min-width: 0; width: auto; margin-right: 2; }
    ControlsPane #form-title { text-style: bold; margin-left: 1; }
    ControlsPane #form { height: 1fr; }
    ControlsPane .field-row { height: auto; }
    ControlsPane .field-label { width: 26; padding-right: 1; }
    ControlsPane .field-row Input, ControlsPane .field-row Select { width: 1fr; }
    ControlsPane .field-error { color: $error; padding-left: 26; }
    ControlsPane #err-general { color: $error; padding-left: 0; }
    ControlsPane #f-notifications { height: 5; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_budget", "New budget"),
        Binding("e", "edit_budget", "Edit"),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("t", "test_channel", "Send test"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._budgets: dict[str, Budget] = {}
        self._statuses: dict[str, str] = {}
        self._editing: Budget | None = None  # the stored budget the form edits (redacted)
        self._original_channels: str | None = None
        self._busy = False
        self._checking = False  # a save was refused: every change re-checks the form
        self._sticky: set[str] = set()  # errors shown that only the source can re-check

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Label(EMPTY_TEXT, id="controls-empty")
        table: DataTable[str | Text] = DataTable(id="budget-table", cursor_type="row", zebra_stripes=True)
        yield table
        with Horizontal(id="controls-bar"):
            yield Button("New", id="btn-new", compact=True)
            yield Button("Edit", id="btn-edit", compact=True)
            yield Button("Save", id="btn-save", variant="primary", compact=True)
            yield Button("Deactivate", id="btn-deactivate", variant="error", compact=True)
            yield Button("Send test", id="btn-test", compact=True)
        yield Label("New budget", id="form-title")
        with VerticalScroll(id="form"):
            yield Label("", id="err-general", classes="field-error")
            for field in FIELDS[:4]:
                yield from self._text_field(field.key, field.label, field.placeholder)
            with Horizontal(classes="field-row"):
                yield Label("Period", classes="field-label")
                options = [(kind, kind) for kind in PERIOD_TYPES]
                yield Select(options, id="f-period_type", value="monthly", allow_blank=False, compact=True)
            yield self._error_label("period_type")
            for field in FIELDS[4:]:
                yield from self._text_field(field.key, field.label, field.placeholder)
            for key, label in SWITCHES:
                yield Checkbox(label, id=f"f-{key}", compact=True)
                yield self._error_label(key)
            yield Label("Channels, one per line TYPE:TARGET (email:, slack:, webhook:); shown redacted")
            yield TextArea("", id="f-notifications", placeholder="webhook:https://example.com/hook")
            yield self._error_label("notifications")

    def _text_field(self, key: str, label: str, placeholder: str) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label(label, classes="field-label")
            yield Input(placeholder=placeholder, id=f"f-{key}", compact=True)
        yield self._error_label(key)

    @staticmethod
    def _error_label(key: str) -> Label:
        label = Label("", id=f"err-{key}", classes="field-error")
        label.display = False
        return label

    def on_mount(self) -> None:
        table = self._table
        table.add_columns("Tenant", "Queue", "Period", "Amount", "Status")
        self._fill_table()
        self._load(None)

    def on_show(self) -> None:
        """Opening the tab focuses the picker, so its keys (n, e, t) work at once."""
        focused = self.screen.focused
        if focused is None or self not in focused.ancestors:
            self._table.focus()

    # -- data ---------------------------------------------------------------------
    @property
    def _app(self) -> JobBudgetApp:
        return cast("JobBudgetApp", self.app)

    @property
    def _table(self) -> DataTable[str | Text]:
        return cast("DataTable[str | Text]", self.query_one("#budget-table", DataTable))

    def show(self, data: TuiData) -> None:
        self._budgets = {v.budget.id: v.budget for v in data.dashboard.budgets if v.budget.id is not None}
        self._statuses = {v.budget.id: v.status for v in data.dashboard.budgets if v.budget.id is not None}
        self._fill_table()

    def reload(self) -> None:
        pass

    def _fill_table(self) -> None:
        table = self._table
        selected = self._selected_key()
        table.clear()
        for budget_id, b in self._budgets.items():
            queue = b.queue_name or "(all queues)"
            amount = Text(money(b.amount, b.currency), justify="right")
            status = badge(self._statuses[budget_id]) if budget_id in self._statuses else Text("")
            row: list[str | Text] = [b.tenant_id, queue, b.period.type, amount, status]
            table.add_row(*row, key=budget_id)
        table.add_row("+ New budget", "", "", "", "", key=NEW_ROW)
        self.query_one("#controls-empty", Label).display = not self._budgets
        if selected is not None and (selected in self._budgets or selected == NEW_ROW):
            table.move_cursor(row=table.get_row_index(selected))

    def _selected_key(self) -> str | None:
        table = self._table
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except CellDoesNotExist:  # a stale cursor
            return None
        return key

    # -- the form -----------------------------------------------------------------
    def _load(self, budget: Budget | None) -> None:
        """Fill the form with ``budget`` (None: a new budget)."""
        self._editing = budget
        if budget is None:
            values, switches = new_values(self._app.tenant_id)
            self.query_one("#form-title", Label).update("New budget")
        else:
            values, switches = budget_values(budget)
            title = f"Editing {budget.scope}, {budget.period.type}" + ("" if budget.active else " (inactive)")
            self.query_one("#form-title", Label).update(title)
        self._original_channels = values["notifications"] if budget is not None else None
        for field in FIELDS:
            widget = self.query_one(f"#f-{field.key}", Input)
            widget.value = values[field.key]
            widget.disabled = budget is not None and field.key in ("tenant_id", "queue_name")
        self.query_one("#f-period_type", Select).value = values["period_type"]
        for key, _ in SWITCHES:
            self.query_one(f"#f-{key}", Checkbox).value = switches[key]
        self.query_one("#f-notifications", TextArea).text = values["notifications"]
        self._clear_errors()
        self._checking = False

    def _values(self) -> tuple[dict[str, str], dict[str, bool]]:
        values = {field.key: self.query_one(f"#f-{field.key}", Input).value for field in FIELDS}
        period = self.query_one("#f-period_type", Select).value
        values["period_type"] = period if isinstance(period, str) else "monthly"
        values["notifications"] = self.query_one("#f-notifications", TextArea).text
        switches = {key: self.query_one(f"#f-{key}", Checkbox).value for key, _ in SWITCHES}
        return values, switches

    def _clear_errors(self, *, keep: set[str] | None = None) -> None:
        for key in (*FORM_FIELDS, "general"):
            if keep is None or key not in keep:
                label = self.query_one(f"#err-{key}", Label)
                label.update("")
                label.display = False
        self._sticky &= keep or set()

    def _show_error(self, exc: JobBudgetError, *, scroll: bool = True) -> str:
        """Put ``exc`` under the field it names (or at the top of the form); the key of
        the label it went to."""
        if isinstance(exc, ValidationError):
            key, text = form_field(exc.field) or "general", exc.reason
            if key == "general":
                text = f"{exc.field}: {exc.reason}"
        else:
            key, text = "general", str(exc)
        label = self.query_one(f"#err-{key}", Label)
        label.update(text)
        label.display = True
        self._sticky.discard(key)
        if scroll:
            label.scroll_visible()
        return key

    def _form_error(self) -> ValidationError | None:
        """What the form finds wrong by itself (see :func:`check_form`)."""
        values, switches = self._values()
        return check_form(values, switches, original=self._editing, original_channels=self._original_channels)

    def _refused(self, exc: JobBudgetError) -> None:
        """Show why a save was refused; from now on every change re-checks the form.
        An error the form cannot find by itself (the outbound policy, the server, the
        database) stays until its own field changes."""
        key = self._show_error(exc)
        self._checking = True
        found = self._form_error()
        if found is None or (form_field(found.field) or "general") != key:
            self._sticky.add(key)

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _recheck(self, event: Input.Changed | TextArea.Changed | Select.Changed | Checkbox.Changed) -> None:
        """After a refused save, a change re-checks the form at once: a fixed field's
        error goes, a still-wrong value says what is wrong with it now."""
        name = event.control.id or ""
        if not self._checking or not name.startswith("f-"):
            return
        self._clear_errors(keep=self._sticky - {name.removeprefix("f-")})
        found = self._form_error()
        if found is not None:
            self._show_error(found, scroll=False)  # the field being typed in stays in view

    # -- actions ------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "btn-new": self.action_new_budget,
            "btn-edit": self.action_edit_budget,
            "btn-save": self.action_save,
            "btn-deactivate": self.action_deactivate,
            "btn-test": self.action_test_channel,
        }
        if event.button.id in actions:
            event.stop()
            actions[event.button.id]()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit_budget()

    def action_new_budget(self) -> None:
        self._load(None)
        self.query_one("#f-tenant_id", Input).focus()

    def action_edit_budget(self) -> None:
        key = self._selected_key()
        if key is None or key == NEW_ROW:
            self.action_new_budget()
            return
        budget = self._budgets.get(key)
        if budget is not None:
            self._load(budget)
            self.query_one("#f-amount", Input).focus()

    def action_save(self) -> None:
        if self._busy:
            return
        self._clear_errors()
        values, switches = self._values()
        editing = self._editing
        try:
            draft = parse_draft(values, switches, original=editing, original_channels=self._original_channels)
        except ValidationError as exc:
            self._refused(exc)
            return
        budget_id = editing.id if editing is not None else None

        def save(source: DataSource) -> Budget:
            source.validate(draft, budget_id=budget_id)
            if budget_id is None:
                return source.create_budget(draft)
            return source.update_budget(budget_id, draft)

        self._run(save, self._saved)

    def _saved(self, budget: Budget) -> None:
        self._app.notify(f"Budget saved: {budget.scope}, {money(budget.amount, budget.currency)} {budget.period.type}")
        if budget.id is not None:
            self._budgets[budget.id] = budget
        self._load(budget)
        self._app.poll(force=True)

    def action_deactivate(self) -> None:
        budget = self._editing
        if budget is None or budget.id is None:
            self._app.notify("Pick a budget and press e (Edit) first", severity="warning")
            return
        budget_id = budget.id

        def done(result: Budget) -> None:
            self._app.notify(f"Budget deactivated: {result.scope}")
            self._load(result)
            self._app.poll(force=True)

        self._run(lambda source: source.deactivate_budget(budget_id), done)

    def action_test_channel(self) -> None:
        budget = self._editing
        if budget is None or budget.id is None:
            self._app.notify("Pick a saved budget and press e (Edit) first", severity="warning")
            return
        area = self.query_one("#f-notifications", TextArea)
        if self._original_channels is None or area.text.strip() != self._original_channels.strip():
            self._app.notify("Save the changed channels before testing them", severity="warning")
            return
        if not budget.notifications:
            self._app.notify("This budget has no notification channel", severity="warning")
            return
        if self._busy:
            return
        index = channel_index(area.text, area.cursor_location[0])
        index = 0 if index is None else index
        budget_id, channel = budget.id, budget.notifications[index]
        label = f"{channel.type}:{channel.target}"  # redacted

        def done(_: None) -> None:
            self._app.notify(f"Test message sent to {label}", title="Send test")

        def failed(exc: JobBudgetError) -> None:
            self._busy = False
            self._app.notify(f"{label}: {exc}", title="Test message failed", severity="error", timeout=10)

        self._busy = True
        self._app.call_source(
            lambda source: source.test_channel(budget_id, index), done=self._idle(done), failed=failed
        )

    # -- helpers ------------------------------------------------------------------
    def _run(self, fn: Callable[[DataSource], Budget], done: Callable[[Budget], None]) -> None:
        if self._busy:
            return
        self._busy = True

        def failed(exc: JobBudgetError) -> None:
            self._busy = False
            self._refused(exc)
            if not isinstance(exc, ValidationError):
                self._app.notify(str(exc), title="Not saved", severity="error", timeout=8)

        self._app.call_source(fn, done=self._idle(done), failed=failed)

    def _idle(self, done: Callable[[T], None]) -> Callable[[T], None]:
        def wrapped(result: T) -> None:
            self._busy = False
            done(result)

        return wrapped
