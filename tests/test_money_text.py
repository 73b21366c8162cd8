"""Money is written as plain decimal text everywhere (never ``0E-9`` or ``1.5E-9``)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from jobbudget.domain.codec import to_jsonable
from jobbudget.domain.cost import CostModel
from jobbudget.domain.money import display_money, from_nanos, plain


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
