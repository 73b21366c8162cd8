"""Exact money: ``Decimal`` dollars, rounded once to a nano-dollar (1e-9), half-even."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

__all__ = [
    "NANO",
    "ZERO",
    "canonical",
    "EXACT",
    "display_money",
    "from_nanos",
    "parse_decimal",
    "plain",
    "round_money",
    "to_decimal",
    "to_nanos",
]

NANO = Decimal("0.000000001")
ZERO = Decimal(0)
#: Arithmetic context wide enough that products of validated inputs are exact.
EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN, Emax=10**6, Emin=-(10**6))
_NANOS_PER_DOLLAR = 10**9


def round_money(value: Decimal) -> Decimal:
    """Round ``value`` half-even to a nano-dollar (the one rounding every cost gets)."""
    return value.quantize(NANO, rounding=ROUND_HALF_EVEN, context=EXACT)


def to_nanos(value: Decimal) -> int:
    """Dollars to integer nano-dollars; ``value`` must already be a multiple of 1e-9."""
    numerator, denominator = value.as_integer_ratio()
    nanos, remainder = divmod(numerator * _NANOS_PER_DOLLAR, denominator)
    if remainder:
        raise ValueError(f"{value} is not a whole number of nano-dollars")
    return nanos


def from_nanos(nanos: int) -> Decimal:
    """Integer nano-dollars to ``Decimal`` dollars with nine decimal places."""
    return Decimal(nanos).scaleb(-9, context=EXACT).quantize(NANO, context=EXACT)


def canonical(value: Decimal) -> Decimal:
    """The same number without trailing zeros and without an exponent: ``100.500000000``
    and ``100.50`` are both ``100.5``, ``1E+2`` is ``100``.  Amounts read back from
    storage (nine decimals) then equal, digit for digit, what was given."""
    reduced = value.normalize(context=EXACT)
    exponent = reduced.as_tuple().exponent
    return reduced.quantize(Decimal(1), context=EXACT) if isinstance(exponent, int) and exponent > 0 else reduced


def plain(value: Decimal) -> str:
    """``value`` as a plain decimal string, never in exponent form: ``0E-9`` is
    ``"0.000000000"`` and ``1.5E-9`` is ``"0.0000000015"`` (JSON, CSV, webhooks)."""
    text = format(value, "f")
    return "0" + text[2:] if text.startswith("-0") and not value else text


def display_money(value: Decimal, currency: str = "", *, places: int = 2) -> str:
    """``value`` for people: rounded half-even to ``places`` decimals, with thousands
    separators and the currency code if given (``"1,234.56 USD"``); never exponent
    form, and never ``-0.00``.  Data (JSON, CSV, webhooks) keeps :func:`plain`."""
    text = f"{value:,.{places}f}"
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]
    return f"{text} {currency}" if currency else text


def to_decimal(value: object) -> Decimal:
    """Convert int, float or Decimal (or a numeric string) exactly.

    A float means its shortest decimal form: ``to_decimal(2.5e-05) == Decimal("0.000025")``.
    Raises ``TypeError`` for bools, strings and other non-numbers and ``ValueError`` for
    NaN and infinities.  Text from files goes through :func:`parse_decimal` first.
    """
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        result = Decimal(repr(value))
    else:
        raise TypeError(f"expected a number, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def parse_decimal(text: str) -> Decimal:
    """Read a number written as text (CSV cells, command-line options) exactly."""
    if not text.isascii():  # Decimal would read Arabic-Indic or fullwidth digits
        raise TypeError(f"{text!r} is not a number")
    try:
        result = Decimal(text.strip())
    except InvalidOperation:
        raise TypeError(f"{text!r} is not a number") from None
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result
