"""Named resources' prices for ``jobbudget import``: ``--price NAME=DOLLARS`` and the
refusal of a job whose resource the cost model does not price."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from ..domain.errors import ValidationError
from ..domain.resources import check_resources, family
from ..importers import LineError

__all__ = ["parse_prices", "unpriced"]


def parse_prices(texts: Iterable[str]) -> dict[str, Decimal]:
    """``--price gpu:a100=0.001`` (dollars per unit: per GPU-second for GPUs) as
    ``{"gpu:a100": Decimal("0.001")}``."""
    prices: dict[str, Decimal] = {}
    for text in texts:
        name, eq, value = text.partition("=")
        try:
            price = Decimal(value.strip())
        except ArithmeticError:
            price = Decimal("NaN")
        if not eq or not name.strip() or not price.is_finite():
            raise ValidationError("--price", text, "must be NAME=DOLLARS such as gpu=0.0008 or gpu:a100=0.001")
        prices[name.strip()] = price
    return check_resources("--price", prices)


def _unit(name: str) -> str:
    return {"gpu": "GPU-seconds", "license": "licence-seconds", "billing": "billing-unit-seconds"}.get(
        family(name), "units"
    )


def unpriced(line: int, name: str, quantity: Decimal) -> LineError:
    """A job refused because the cost model does not price one of its resources."""
    base = family(name)
    how = (
        f"--price {name}=DOLLARS"
        if base == name
        else f"--price {name}=DOLLARS, or --price {base}=DOLLARS for every type"
    )
    return LineError(
        line,
        f"resources.{name}: the cost model has no price for {name} (the job used {quantity} {_unit(name)}); "
        f"add one ({how}, or the cost model's resources), then import again: the jobs already stored count "
        "as duplicates",
        f"resources.{name}",
    )
