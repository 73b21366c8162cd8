"""The Controls tab of the terminal UI, driven by Textual's Pilot over a real service on
a SQLite file: budgets are created, refused (the error under the right field, nothing
stored), edited without losing their channels' secrets, deactivated, and their webhook
channel tested against a real receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input, Label, Select, TabbedContent, TextArea

from conftest import FakeClock
from jobbudget.config import Config
from jobbudget.domain.budget import Budget, NotificationChannel
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.service import BudgetService
from jobbudget.tui.app import JobBudgetApp
from jobbudget.tui.controls import EMPTY_TEXT, ControlsPane
from jobbudget.tui.forms import budget_values, channel_index, form_field, parse_channels, parse_draft
from jobbudget.tui.source import LocalSource
from receivers import Receiver, Reply, http_receivers

from .support import wait_until

SECRET_HOOK = "https://hooks.example.com/in/t0ken-s3cr3t"


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[BudgetService]:
    made = BudgetService(Config(database_url=f"sqlite:///{tmp_path}/t.db"), clock=clock)
    yield made
    made.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receivers() as start:
        yield start()


def stored(service: BudgetService, **changes: Any) -> Budget:
    channel = NotificationChannel(type="webhook", target=SECRET_HOOK, metadata={"secret": "sign-k3y"})
    budget = Budget(tenant_id="acme", queue_name="q1", amount=Decimal("100"), period=BudgetPeriod("monthly"))
    return service.create_budget(replace(budget, notifications=(channel,), **changes))


async def open_controls(pilot: Pilot[None], budgets: int) -> ControlsPane:
    """Switch to the Controls tab once the first poll has shown ``budgets`` budgets."""
    await pilot.press("3")
    app = pilot.app
    assert isinstance(app, JobBudgetApp)
    pane = app.query_one(ControlsPane)
    table = pane.query_one("#budget-table", DataTable)
    await wait_until(pilot, lambda: app.data is not None and table.row_count == budgets + 1, what="rows")
    return pane


def fill(pane: ControlsPane, **values: str) -> None:
    for key, value in values.items():
        if key == "notifications":
            pane.query_one("#f-notifications", TextArea).text = value
        elif key == "period_type":
            pane.query_one("#f-period_type", Select).value = value
        else:
            pane.query_one(f"#f-{key}", Input).value = value


async def click(pilot: Pilot[None], pane: ControlsPane, selector: str) -> None:
    """Click a button as a person would: scrolled into view first (the form scrolls to
    the field at fault, which can take the buttons off screen)."""
    pane.query_one(selector).scroll_visible(animate=False)
    await pilot.pause()
    assert await pilot.click(selector), f"{selector} was not clicked"


def error_of(pane: ControlsPane, key: str) -> str:
    label = pane.query_one(f"#err-{key}", Label)
    return str(label.content) if label.display else ""


async def edit_first(pilot: Pilot[None], pane: ControlsPane) -> None:
    table = pane.query_one("#budget-table", DataTable)
    table.focus()
    table.move_cursor(row=0)
    await pilot.press("e")
    await wait_until(pilot, lambda: pane._editing is not None, what="the form to load")


# -- through the app --------------------------------------------------------------------
@pytest.mark.asyncio
async def test_create_a_budget_through_the_form(service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = await open_controls(pilot, 0)
        empty = pane.query_one("#controls-empty", Label)
        assert empty.display and str(empty.content) == EMPTY_TEXT
        await pilot.press("n")  # from the table: a new form, the tenant focused
        assert app.focused is pane.query_one("#f-tenant_id", Input)
        await pilot.press(*"acme")
        fill(
            pane, amount="1234.56", warning_threshold="0.8", period_type="weekly", notifications="email:ops@example.com"
        )
        pane.query_one("#f-warn_only", Checkbox).value = True
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: bool(service.list_budgets()), what="the budget to be stored")
        [budget] = service.list_budgets()
        assert (budget.tenant_id, budget.queue_name, budget.period.type) == ("acme", "", "weekly")
        assert budget.amount == Decimal("1234.56") and isinstance(budget.amount, Decimal)
        assert budget.warning_threshold == Decimal("0.8")
        assert budget.enforcement_policy.warn_only is True
        assert budget.notifications[0].target == "ops@example.com"
        table = pane.query_one("#budget-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 2, what="the overview to update")
        assert not empty.display
        assert pane._editing is not None and pane._editing.id == budget.id  # the form now edits it
        assert pane.query_one("#f-tenant_id", Input).disabled


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"amount": "-5"}, "amount", "must be greater than 0"),
        ({"amount": "12,5"}, "amount", "must be a number"),
        ({"warning_threshold": "0.95"}, "throttle_threshold", "must be at least warning_threshold"),
        ({"throttle_factor": "1.5"}, "throttle_factor", ""),
        ({"period_type": "custom", "start_date": "2024-02-01", "end_date": "2024-01-01"}, "end_date", "must not be"),
        ({"start_date": "2024-13-01"}, "start_date", "YYYY-MM-DD"),
        ({"notifications": "email:ops@example.com\nwebhook:ftp://x"}, "notifications", "line 2: must be an http(s)"),
        ({"currency": "XXQ"}, "currency", "ISO 4217"),
        ({"tenant_id": ""}, "tenant_id", ""),
        ({"labels": "project"}, "labels", "key=value"),
        ({"labels": "bad key!=x"}, "labels", "label name"),
        ({"carry_over": "sometimes"}, "carry_over", "must be one of none, unused, overage, both"),
        ({"carry_over_cap": "-1"}, "carry_over_cap", "must not be negative"),
    ],
)
async def test_an_invalid_budget_is_refused_next_to_its_field(
    service: BudgetService, values: dict[str, str], field: str, text: str
) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = await open_controls(pilot, 0)
        fill(pane, **({"tenant_id": "acme", "amount": "10"} | values))
        await pilot.pause()
        pane.action_save()  # what the Save button and Ctrl+S do (clicking is covered by the create test)
        await wait_until(
            pilot,
            lambda: bool(error_of(pane, field)),
            what=lambda: (
                f"an error under {field} (shown: { {k: error_of(pane, k) for k in ('general', 'tenant_id')} })"
            ),
        )
        assert text in error_of(pane, field)
        others = [key for key in ("amount", "general", "notifications", "tenant_id") if key != field]
        assert not any(error_of(pane, key) for key in others)
        await pilot.pause(0.1)
        assert service.list_budgets(include_inactive=True) == []
        fill(pane, **{"tenant_id": "acme", "amount": "10", "warning_threshold": "0.75", "throttle_factor": "0.5",
                      "period_type": "monthly", "start_date": "", "notifications": "", "currency": "USD",
                      "labels": "", "carry_over": "none", "carry_over_cap": "1"})  # fmt: skip
        pane.action_save()
        await wait_until(pilot, lambda: bool(service.list_budgets()), what="the corrected budget")
        assert not error_of(pane, field)


@pytest.mark.asyncio
async def test_a_fixed_field_loses_its_error_at_once(service: BudgetService) -> None:
    """A field's error stayed after the value was fixed, until the next save: after a
    refused save every change re-checks the form, so a fixed field's error goes at once
    and a still-wrong value shows what is wrong with it now."""
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = await open_controls(pilot, 0)
        fill(pane, tenant_id="acme")
        pane.query_one("#f-amount", Input).focus()
        await pilot.press(*"-5", "ctrl+s")
        await wait_until(pilot, lambda: bool(error_of(pane, "amount")), what="the amount's error")
        assert error_of(pane, "amount") == "must be greater than 0"
        await pilot.press("backspace", "backspace")  # still wrong: the message says what is wrong now
        assert error_of(pane, "amount") == "is required"
        await pilot.press(*"250")
        assert error_of(pane, "amount") == ""  # fixed: gone before any save
        assert not any(error_of(pane, key) for key in ("general", "tenant_id", "currency"))
        assert service.list_budgets(include_inactive=True) == []
        # an error between two fields goes when either of them fixes it
        fill(pane, warning_threshold="0.95")
        pane.action_save()
        await wait_until(pilot, lambda: bool(error_of(pane, "throttle_threshold")), what="the thresholds' error")
        pane.query_one("#f-warning_threshold", Input).focus()
        await pilot.press("end", "backspace", "backspace", *"75")
        assert error_of(pane, "throttle_threshold") == ""
        # what only the service can tell (here the outbound policy) stays until its own field changes
        fill(pane, notifications="webhook:http://10.0.0.1/hook")
        pane.action_save()
        await wait_until(pilot, lambda: bool(error_of(pane, "notifications")), what="the channel's error")
        pane.query_one("#f-amount", Input).focus()
        await pilot.press("end", "0")
        assert error_of(pane, "notifications") and not error_of(pane, "amount")
        fill(pane, notifications="email:ops@example.com")
        await pilot.pause()
        assert error_of(pane, "notifications") == ""
        assert service.list_budgets(include_inactive=True) == []
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: bool(service.list_budgets()), what="the corrected budget")
        assert service.list_budgets()[0].amount == Decimal(2500)


@pytest.mark.asyncio
@pytest.mark.parametrize("field", ["#f-amount", "#f-notifications"])
async def test_escape_leaves_a_text_field_so_the_number_keys_switch_tabs(service: BudgetService, field: str) -> None:
    """Escape did not leave a text field, so pressing 4 to switch tabs typed into
    Amount (250 -> 2504)."""
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = await open_controls(pilot, 0)
        widget = pane.query_one(field, Input | TextArea)
        widget.focus()
        await pilot.press(*"250")
        text = lambda: widget.text if isinstance(widget, TextArea) else widget.value  # noqa: E731
        assert text() == "250"
        await pilot.press("escape")
        assert app.focused is pane.query_one("#budget-table")  # the tab's table, whose keys (n, e, t) work
        await pilot.press("4")
        assert app.query_one(TabbedContent).active == "alerts"
        assert text() == "250"
        await pilot.press("3")  # back: the form kept the value, the focus is not in a field
        assert app.query_one(TabbedContent).active == "controls"
        assert text() == "250" and not isinstance(app.focused, Input | TextArea)


@pytest.mark.asyncio
async def test_editing_the_amount_keeps_the_channel_secrets(service: BudgetService) -> None:
    budget = stored(service)
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = await open_controls(pilot, 1)
        await edit_first(pilot, pane)
        channels = pane.query_one("#f-notifications", TextArea).text
        assert channels == "webhook:https://hooks.example.com/***" and "t0ken" not in channels
        assert "t0ken" not in app.export_screenshot()  # not on screen either
        tenant = pane.query_one("#f-tenant_id", Input)
        assert tenant.disabled and tenant.value == "acme"
        fill(pane, amount="250.125")
        await click(pilot, pane, "#btn-save")
        await wait_until(pilot, lambda: service.get_budget(str(budget.id)).amount == Decimal("250.125"), what="save")
        saved = service.get_budget(str(budget.id))
        assert saved.notifications == budget.notifications  # target and secret metadata untouched
        assert saved.notifications[0].target == SECRET_HOOK
        assert saved.notifications[0].metadata == {"secret": "sign-k3y"}
        # changed channels replace the stored ones
        fill(pane, notifications="email:ops@example.com")
        await pilot.press("ctrl+s")
        check = lambda: service.get_budget(str(budget.id)).notifications[0].type == "email"  # noqa: E731
        await wait_until(pilot, check, what="new channels")
        assert len(service.get_budget(str(budget.id)).notifications) == 1


@pytest.mark.asyncio
async def test_deactivate(service: BudgetService) -> None:
    budget = stored(service)
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = await open_controls(pilot, 1)
        await pilot.click("#btn-deactivate")  # nothing loaded yet: nothing happens
        await pilot.pause(0.1)
        assert service.get_budget(str(budget.id)).active
        await edit_first(pilot, pane)
        await pilot.click("#btn-deactivate")
        await wait_until(pilot, lambda: not service.get_budget(str(budget.id)).active, what="deactivation")
        table = pane.query_one("#budget-table", DataTable)
        await wait_until(pilot, lambda: "Inactive" in [str(c).strip() for c in table.get_row_at(0)], what="the status")


@pytest.mark.asyncio
async def test_send_test_to_a_real_webhook(service: BudgetService, receiver: Receiver) -> None:
    email = NotificationChannel(type="email", target="ops@example.com")
    hook = NotificationChannel(type="webhook", target=receiver.url("/in/s3cr3t"))
    budget = service.create_budget(
        Budget(tenant_id="acme", amount=Decimal(5), period=BudgetPeriod("daily"), notifications=(email, hook))
    )
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = await open_controls(pilot, 1)
        await edit_first(pilot, pane)
        area = pane.query_one("#f-notifications", TextArea)
        area.move_cursor((1, 0))  # the webhook's line
        await pilot.click("#btn-test")
        assert receiver.wait_for(1, timeout=10)
        await wait_until(pilot, lambda: not pane._busy, what="the test to finish")
        await pilot.pause(0.2)
        assert len(receiver.requests) == 1 and receiver.requests[0].path == "/in/s3cr3t"
        messages = [n.message for n in app._notifications]
        assert any("Test message sent to webhook:http://127.0.0.1" in m for m in messages)
        assert not any("s3cr3t" in m for m in messages)
        # a refusing receiver: the error is shown, and `t` works from the table
        receiver.then(Reply(status=403))
        pane.query_one("#budget-table", DataTable).focus()
        await pilot.press("t")
        assert receiver.wait_for(2, timeout=10)
        await wait_until(pilot, lambda: any(n.title == "Test message failed" for n in app._notifications))
        assert budget.id is not None


@pytest.mark.asyncio
async def test_the_form_fits_a_small_terminal(service: BudgetService) -> None:
    stored(service)
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_controls(pilot, 1)
        save = pane.query_one("#btn-save")
        assert save.region.height > 0 and save.region.right <= 80 and save.region.bottom <= 24
        area = pane.query_one("#f-notifications", TextArea)
        area.focus()
        form = pane.query_one("#form").region
        await wait_until(pilot, lambda: form.contains_region(area.region), what="the form to scroll to the channels")


# -- the form's text, without widgets -----------------------------------------------------
@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("amount", "amount"),
        ("warning_threshold", "warning_threshold"),
        ("enforcement_policy.throttle_factor", "throttle_factor"),
        ("period.end_date", "end_date"),
        ("period.type", "period_type"),
        ("period", "period_type"),
        ("notifications[0].target", "notifications"),
        ("notifications.type", "notifications"),
        ("tags", None),
        ("index", None),
    ],
)
def test_form_field(name: str, key: str | None) -> None:
    assert form_field(name) == key


def test_parse_channels_and_cursor_lines() -> None:
    text = "email:ops@example.com\n\n slack:https://hooks.slack.com/services/T1/B2/x \n"
    assert [c.type for c in parse_channels(text)] == ["email", "slack"]
    with pytest.raises(ValidationError) as caught:
        parse_channels("email:ops@example.com\nwebhook:https://a\nsms:+4912345")
    assert caught.value.field == "notifications[2]" and "+4912345" not in str(caught.value)
    assert [channel_index(text, row) for row in range(4)] == [0, None, 1, None]


def test_unchanged_channels_keep_the_stored_ones() -> None:
    hook = NotificationChannel(type="webhook", target=SECRET_HOOK)
    budget = Budget(tenant_id="acme", amount=Decimal(1), period=BudgetPeriod("monthly"), notifications=(hook,))
    values, switches = budget_values(budget.redacted())
    draft = parse_draft(values, switches, original=budget.redacted(), original_channels=values["notifications"])
    assert draft.notifications is None and draft.amount == Decimal(1)
    values["amount"] = "0.1"
    values["throttle_factor"] = "0.3"
    values["notifications"] = ""
    draft = parse_draft(values, switches, original=budget.redacted(), original_channels="webhook:x")
    assert draft.notifications == () and draft.amount == Decimal("0.1")
    assert draft.enforcement_policy.throttle_factor == 0.3


@pytest.mark.asyncio
async def test_labels_and_rollover_through_the_form_and_kept_on_edit(service: BudgetService) -> None:
    app = JobBudgetApp(LocalSource(service), refresh_seconds=0)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = await open_controls(pilot, 0)
        await pilot.press("n")
        await pilot.press(*"acme")
        fill(pane, amount="500", labels="project=llm, team=vision", carry_over="unused", carry_over_cap="0.25")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: bool(service.list_budgets()), what="the budget to be stored")
        [budget] = service.list_budgets()
        assert budget.labels == {"project": "llm", "team": "vision"}
        policy = budget.enforcement_policy
        assert (policy.carry_over, policy.carry_over_cap) == ("unused", Decimal("0.25"))
        await wait_until(pilot, lambda: pane._editing is not None, what="the form to edit the new budget")
        fill(pane, amount="600")  # the form edits it now: other fields stay as stored
        pane.action_save()
        await wait_until(
            pilot,
            lambda: service.list_budgets()[0].amount == 600,
            what=lambda: f"the edit (errors: { {k: error_of(pane, k) for k in ('general', 'labels', 'amount')} })",
        )
        [edited] = service.list_budgets()
        assert edited.labels == budget.labels and edited.enforcement_policy == policy
