"""Report recommendations that make under-reported usage visible.

A reporter that under-reports (CPU seconds, memory) makes its tenant's jobs look
cheap, and nothing in a single job's cost says so.  Two signals do:

6. **Cost per CPU-hour far from the other tenants'** — a tenant's spend divided by
   its CPU-hours (CPU cost over the model's price of a CPU-hour) at least
   :data:`PEER_RATIO` times above or below the median of the other tenants of the
   platform over the same period (at least :data:`MIN_PEERS` of them with CPU spend,
   and at least :data:`MIN_JOBS` jobs of the tenant).  Only the median is shown:
   no other tenant is named or can be inferred.
7. **Calibration drift** — the latest calibration against real bills found the cost
   model in force off by at least :data:`DRIFT` (and was not applied): every job is
   priced that much too low (or high).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .cost import CostBreakdown
from .money import ZERO

__all__ = [
    "DRIFT",
    "MIN_JOBS",
    "MIN_PEERS",
    "PEER_RATIO",
    "IntegritySignals",
    "cost_per_cpu_hour",
    "integrity_advice",
]

PEER_RATIO = Decimal(3)
MIN_PEERS = 3
MIN_JOBS = 10
DRIFT = 0.10
_HOUR = Decimal(3600)


@dataclass(frozen=True, slots=True, kw_only=True)
class IntegritySignals:
    """Platform figures a tenant's report is compared with.

    ``peer_cost_per_cpu_hour``: the other tenants' spend per CPU-hour over the
    report's period (unnamed; tenants without CPU spend left out).
    ``cpu_second_price``: the cost model's price of one CPU-second (the CPU weight
    times the environment multiplier), to turn CPU cost into CPU time.
    ``calibration_drift``: mean signed relative error of the model in force found by
    the latest calibration that was not applied (negative: it undercharges), with its
    date; None when there is none."""

    peer_cost_per_cpu_hour: tuple[Decimal, ...] = ()
    cpu_second_price: Decimal = ZERO
    calibration_drift: float | None = None
    calibration_date: date | None = None


def cost_per_cpu_hour(total: Decimal, cpu_cost: Decimal, cpu_second_price: Decimal) -> Decimal | None:
    """Spend per CPU-hour, or None when there is no CPU spend (or no CPU price)."""
    if cpu_cost <= 0 or cpu_second_price <= 0:
        return None
    return total * cpu_second_price * _HOUR / cpu_cost


def integrity_advice(*, signals: IntegritySignals, total: Decimal, jobs: int, components: CostBreakdown) -> list[str]:
    """Rules 6 and 7 for a tenant whose period spend is ``total`` over ``jobs`` jobs."""
    out: list[str] = []
    peers = [p for p in signals.peer_cost_per_cpu_hour if p > 0]
    if len(peers) >= MIN_PEERS and jobs >= MIN_JOBS and total > 0 and signals.cpu_second_price > 0:
        usual = statistics.median(peers)
        own = cost_per_cpu_hour(total, components.cpu_cost, signals.cpu_second_price)
        others = f"the median {_usd(usual)} of the platform's other tenants"
        if own is None:
            out.append(
                f"Its {jobs:,} jobs report no CPU time at all, while the platform's other tenants "
                f"pay a median {_usd(usual)} per CPU-hour: check that its workers report cpu_time (unreported "
                "CPU is never billed)."
            )
        elif own >= usual * PEER_RATIO:
            out.append(
                f"It pays {_usd(own)} per CPU-hour, {own / usual:.1f}× {others}: its jobs report little CPU time "
                "for what else they cost; check that its workers report CPU time in full (under-reported CPU "
                "is never billed)."
            )
        elif own * PEER_RATIO <= usual:
            out.append(
                f"It pays {_usd(own)} per CPU-hour, {usual / own:.1f}× less than {others}: its jobs report "
                "little memory, payload or network for their CPU time; check that its workers report them "
                "in full."
            )
    drift = signals.calibration_drift
    if drift is not None and abs(drift) >= DRIFT:
        when = f" on {signals.calibration_date}" if signals.calibration_date else ""
        if drift < 0:
            what = f"charges {-drift * 100:.0f} % less than the real bills: every job is under-priced"
        else:
            what = f"charges {drift * 100:.0f} % more than the real bills: every job is over-priced"
        out.append(
            f"The last calibration{when} found that the cost model in force {what}; apply a calibration "
            "(`jobbudget calibrate --apply`) or check the usage the workers report."
        )
    return out


def _usd(value: Decimal) -> str:
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
