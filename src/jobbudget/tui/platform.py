"""The Platform tab: the organisation tree (organisation → team → tenant), the recent
refunds and corrections, and a form to refund a job or credit or debit a tenant.  The
same rules as everywhere: a refund happens once, every change is audited, errors show
next to the field and nothing is stored until the input is valid."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Tree

from ..domain.adjustments import Adjustment
from ..domain.errors import JobBudgetError, ValidationError
from ..domain.hierarchy import TenantTree
from ..domain.money import display_money, parse_decimal
from .source import DataSource, PlatformView

if TYPE_CHECKING:
    from .app import JobBudgetApp

__all__ = ["EMPTY_TREE", "FORM", "PlatformPane"]

EMPTY_TREE = "No tree yet: every tenant is a root (jobbudget tree set TENANT --parent TEAM)"
#: The form's fields: key, label, placeholder.
FORM = (
    ("tenant_id", "Tenant", "e.g. acme"),
    ("job_id", "Job (refund)", "the job's id"),
    ("amount", "Amount (credit/debit)", "negative: a credit, e.g. -25"),
    ("reason", "Reason", "why, for the audit log"),
)
T = TypeVar("T")
_COLUMNS = ("Day", "Kind", "Tenant", "Queue", "Job", "Amount", "Reason", "By")


class PlatformPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "refund", "Refund job"),
        Binding("c", "adjust", "Credit/debit"),
    ]

    DEFAULT_CSS = """
    PlatformPane #platform-top { height: auto; max-height: 60%; }
    PlatformPane #org-tree { width: 1fr; min-width: 20; height: auto; max-height: 14; }
    PlatformPane #platform-form { width: 2fr; height: auto; }
    PlatformPane .field-row { height: auto; }
    PlatformPane .field-label { width: 22; padding-right: 1; }
    PlatformPane .field-row Input { width: 1fr; }
    PlatformPane .field-error { color: $error; padding-left: 22; }
    PlatformPane .buttons { height: auto; }
    PlatformPane #adj-title { text-style: bold; margin-top: 1; }
    PlatformPane #adj-table { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.view: PlatformView | None = None

    @property
    def _app(self) -> JobBudgetApp:
        return cast("JobBudgetApp", self.app)

    def compose(self) -> ComposeResult:
        with Horizontal(id="platform-top"):
            yield Tree("Organisation", id="org-tree")
            with Vertical(id="platform-form"):
                yield Label("", id="perr-general", classes="field-error")
                for key, label, placeholder in FORM:
                    with Horizontal(classes="field-row"):
                        yield Label(label, classes="field-label")
                        yield Input(placeholder=placeholder, id=f"p-{key}", compact=True)
                    error = Label("", id=f"perr-{key}", classes="field-error")
                    error.display = False
                    yield error
                with Horizontal(classes="buttons"):
                    yield Button("Refund job", id="btn-refund", variant="primary", compact=True)
                    yield Button("Credit/debit", id="btn-adjust", compact=True)
        yield Label("Refunds and corrections, last 30 days (newest first)", id="adj-title")
        table: DataTable[Text] = DataTable(id="adj-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*_COLUMNS)
        yield table

    # -- data -----------------------------------------------------------------------
    def show(self, view: PlatformView) -> None:
        if view == self.view:
            return
        self.view = view
        tree_widget = self.query_one("#org-tree", Tree)
        tree_widget.clear()
        tree = TenantTree.of(view.tree)
        if not tree:
            tree_widget.root.add_leaf(EMPTY_TREE)
        for root in tree.roots():
            self._add(tree_widget.root, tree, root)
        tree_widget.root.expand_all()
        table = self.query_one("#adj-table", DataTable)
        table.clear()
        for a in view.adjustments:
            table.add_row(*_row(a))

    def _add(self, parent: object, tree: TenantTree, node: str) -> None:
        children = tree.children(node)
        if not children:
            parent.add_leaf(node)  # type: ignore[attr-defined]
            return
        branch = parent.add(node)  # type: ignore[attr-defined]
        for child in children:
            self._add(branch, tree, child)

    # -- actions ----------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "btn-refund":
            self.action_refund()
        elif event.button.id == "btn-adjust":
            self.action_adjust()

    def _values(self) -> dict[str, str]:
        return {key: self.query_one(f"#p-{key}", Input).value.strip() for key, _, _ in FORM}

    def action_refund(self) -> None:
        values = self._values()
        self._clear_errors()
        for key in ("tenant_id", "job_id", "reason"):
            if not values[key]:
                self._refused(ValidationError(key, None, "is required to refund a job"))
                return

        def done(result: Adjustment | None) -> None:
            if result is None:
                self._app.notify(f"Job {values['tenant_id']}/{values['job_id']} was refunded before: nothing changed")
            else:
                self._app.notify(f"Refunded {display_money(-result.amount)} for {values['tenant_id']}/{result.job_id}")
            self._app.poll(force=True)

        self._run(lambda s: s.refund(values["tenant_id"], values["job_id"], reason=values["reason"]), done)

    def action_adjust(self) -> None:
        values = self._values()
        self._clear_errors()
        try:
            for key in ("tenant_id", "amount", "reason"):
                if not values[key]:
                    raise ValidationError(key, None, "is required for a credit or debit")
            try:
                amount = parse_decimal(values["amount"])
            except (TypeError, ValueError):
                raise ValidationError("amount", values["amount"], "must be a number such as -25 or 12.50") from None
        except ValidationError as exc:
            self._refused(exc)
            return

        def done(result: Adjustment) -> None:
            self._app.notify(
                f"{result.kind.capitalize()} of {display_money(abs(result.amount))} for {result.tenant_id}"
            )
            self._app.poll(force=True)

        self._run(lambda s: s.adjust(values["tenant_id"], amount, reason=values["reason"]), done)

    def _run(self, fn: Callable[[DataSource], T], done: Callable[[T], None]) -> None:
        def failed(exc: JobBudgetError) -> None:
            if isinstance(exc, ValidationError):
                self._refused(exc)
            else:
                self._app.notify(str(exc), title="Not done", severity="error", timeout=8)

        self._app.call_source(fn, done=done, failed=failed)

    def _refused(self, exc: ValidationError) -> None:
        key = exc.field.split(".", 1)[0].split("[", 1)[0]
        label = self.query_one(f"#perr-{key}" if key in {k for k, _, _ in FORM} else "#perr-general", Label)
        label.update(Text(str(exc)))
        label.display = True

    def _clear_errors(self) -> None:
        for key in ("general", *(k for k, _, _ in FORM)):
            label = self.query_one(f"#perr-{key}", Label)
            label.update("")
            label.display = False


def _row(a: Adjustment) -> tuple[Text, ...]:
    style = "green" if a.amount < 0 else "red"
    return (
        Text(str(a.day)),
        Text(a.kind),
        Text(a.tenant_id),
        Text(a.queue_name or "-"),
        Text(a.job_id or "-"),
        Text(display_money(a.amount), style=style, justify="right"),
        Text(a.reason),
        Text(a.actor),
    )
