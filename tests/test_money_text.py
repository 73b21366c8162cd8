"""Money is written as plain decimal text everywhere (never ``0E-9`` or ``1.5E-9``)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from jobbudget.domain.alerts import AlertEvent
from jobbudget.domain.codec import to_jsonable
from jobbudget.domain.cost import CostModel
from jobbudget.domain.money import display_money, from_nanos, plain
from jobbudget.notify.messages import encode_json, render_email, webhook_body
from jobbudget.notify.slack_message import slack_payload

EXPONENT = re.compile(r"\dE[+-]?\d")  # Decimal's exponent form: 0E-9, 1.5E-9, 1E+3


def test_plain_never_uses_exponents() -> None:
    assert plain(from_nanos(0)) == "0.000000000"
    assert plain(Decimal("0E-9")) == "0.000000000"
    assert plain(Decimal("-0E-9")) == "0.000000000"
    assert plain(Decimal("1.14935980902778E-9")) == "0.00000000114935980902778"
    assert plain(Decimal("1E+3")) == "1000"
    assert plain(Decimal("-2.5")) == "-2.5"


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_plain_is_exact_and_has_no_exponent(value: Decimal) -> None:
    text = plain(value)
    assert "E" not in text.upper()
    assert Decimal(text) == value


def test_jsonable_forms_use_plain_text() -> None:
    model = CostModel.from_unit_prices(
        cpu_per_vcpu_hour=Decimal("0.031611"), ram_per_gib_hour=Decimal("0.004237"), egress_per_gib=Decimal("0.12")
    )
    data = to_jsonable({"model": model, "zero": from_nanos(0)})
    assert data["zero"] == "0.000000000"
    assert data["model"]["memory_weight"] == "0.00000000114935980902778"


def test_display_money_is_rounded_currency_text() -> None:
    assert display_money(Decimal("1234.565"), "USD") == "1,234.56 USD"  # half-even, like every rounding here
    assert display_money(Decimal("0E-9"), "EUR") == "0.00 EUR"
    assert display_money(Decimal("-0.001"), "USD") == "0.00 USD"  # never "-0.00"
    assert display_money(Decimal("1E+3")) == "1,000.00"
    assert display_money(Decimal("0.0123"), places=4) == "0.0123"


def test_alert_messages_write_money_plain_for_machines_and_as_currency_for_people() -> None:
    zero = AlertEvent(
        id="evt-0", type="forecast_overrun", budget_id="b-1", tenant_id="acme", queue_name="ml",
        period_start=date(2024, 1, 1), period_end=date(2024, 1, 31), occurred_at=datetime(2024, 1, 15, tzinfo=UTC),
        current_spend=Decimal("0E-9"), budget_amount=Decimal("1E+3"), utilization=Decimal("0E-9"),
        forecast_spend=Decimal("1.5E-9"),
    )  # fmt: skip
    events = [zero, replace(zero, id="evt-1")]
    body = webhook_body(events[:1])
    assert (body["current_spend"], body["budget_amount"]) == ("0.000000000", "1000")
    assert (body["utilization"], body["forecast_spend"]) == ("0.000000000", "0.0000000015")
    slack = json.dumps([slack_payload(events[:1]), slack_payload(events, digest=True)], ensure_ascii=False)
    mails = [render_email(events[:1]), render_email(events, digest=True)]
    people = [slack, *(f"{m.subject}\n{m.text}\n{m.html}" for m in mails)]
    for text in (encode_json(body).decode(), encode_json(webhook_body(events, digest=True)).decode(), *people):
        assert not EXPONENT.search(text), EXPONENT.findall(text)
    for text in people:
        assert "0.00 of 1,000.00 USD (0.0%)" in text and "the forecast is 0.00 USD" in text
    assert "1,000.00 USD" in mails[0].subject


def test_canonical_digits() -> None:
    from jobbudget.domain.money import canonical

    assert str(canonical(Decimal("100.500000000"))) == "100.5"
    assert str(canonical(Decimal("1E+2"))) == "100"
    assert str(canonical(Decimal("1E+28"))) == "1" + "0" * 28  # wider than the default context
    assert str(canonical(Decimal("0E-9"))) == "0"
