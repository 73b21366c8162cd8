"""build_report: exact sums, the daily series, drivers, the compared budget and every
recommendation rule (with the numbers it names, and silence when it should be silent)."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from jobbudget.domain.cost import COMPONENTS, CostBreakdown
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.domain.records import DailyCost
from jobbudget.domain.report_advice import round_up_nicely
from jobbudget.domain.reporting import BudgetLine, BudgetReport, build_report, lookback_start

NOV = BudgetPeriod("monthly", start_date=date(2026, 11, 1), end_date=date(2026, 11, 30))
D = Decimal


def day(n: int, month: int = 11) -> date:
    return date(2026, month, n)


def row(when: date, queue: str, jobs: int = 10, tenant: str = "acme", cost: str = "", **parts: str) -> DailyCost:
    """A daily row whose components are ``parts`` (cpu=..., memory=..., base=...), or
    ``cost`` split evenly between CPU and memory (no component dominates)."""
    if cost:
        parts = {"cpu": str(D(cost) / 2), "memory": str(D(cost) / 2)}
    breakdown = CostBreakdown(**{f"{k}_cost": D(v) for k, v in parts.items()})
    total = breakdown.total
    avg = (total / jobs).quantize(D("0.000000001")) if jobs else D(0)
    return DailyCost(tenant, queue, when, jobs, total, breakdown, avg, avg, avg, avg)


@dataclass(frozen=True)
class FakeForecast:
    """Stands in for jobbudget.domain.forecasting.Forecast (same fields)."""

    period_end: date
    predicted_spend: Decimal
    budget_utilization: Decimal
    trend_direction: str
    days_until_overrun: int | None
    recommendation: str
    lower_80: Decimal
    upper_80: Decimal
    lower_95: Decimal
    upper_95: Decimal
    method: str
    day_of_week_factors: tuple[float, ...]
    daily_projection: tuple[tuple[date, Decimal], ...]
    as_of: date
    budget_amount: Decimal
    current_spend: Decimal


def fake_forecast(**overrides: Any) -> FakeForecast:
    values: dict[str, Any] = {
        "period_end": date(2026, 11, 30),
        "predicted_spend": D("5000"),
        "budget_utilization": D("0.5"),
        "trend_direction": "stable",
        "days_until_overrun": None,
        "recommendation": "",
        "lower_80": D("4500"),
        "upper_80": D("5500"),
        "lower_95": D("4000"),
        "upper_95": D("6000"),
        "method": "test",
        "day_of_week_factors": (1.0,) * 7,
        "daily_projection": (),
        "as_of": date(2026, 11, 20),
        "budget_amount": D("10000"),
        "current_spend": D("2000"),
        **overrides,
    }
    return FakeForecast(**values)


def line(queue: str = "", amount: str = "10000", period_type: str = "monthly", **extra: Any) -> BudgetLine:
    values: dict[str, Any] = {
        "budget_id": f"b-{queue or 'all'}-{amount}",
        "queue_name": queue,
        "scope": queue or "(all queues)",
        "period_type": period_type,
        "period_start": day(1),
        "period_end": day(30),
        "amount": D(amount),
        "currency": "USD",
        "spend": D(0),
        "utilization": D(0),
        "action": "allow",
        **extra,
    }
    return BudgetLine(**values)


def build(rows: list[DailyCost], *, today: date = day(20), **kwargs: Any) -> BudgetReport:
    values: dict[str, Any] = {"period": NOV, "budgets": (), "forecast": None, **kwargs}
    return build_report(tenant_id="acme", daily_costs=rows, today=today, **values)


def steady(queues: tuple[str, ...] = ("a", "b"), days: range = range(1, 21), cpu: str = "10") -> list[DailyCost]:
    return [row(day(d), q, cpu=cpu, memory=cpu, base="1") for d in days for q in queues]


# -- sums and series --------------------------------------------------------------------


def test_every_aggregate_is_the_exact_sum_of_its_parts() -> None:
    rng = random.Random(5)
    rows = [
        row(
            day(d),
            f"q{q}",
            jobs=rng.randint(1, 500),
            **{c[:-5]: str(D(rng.randint(0, 10**12)).scaleb(-9)) for c in COMPONENTS},
        )
        for d in range(1, 21)
        for q in range(7)
        if rng.random() < 0.8
    ]
    r = build(rows)
    total = sum((x.total_cost for x in rows), D(0))
    assert r.total_spend == total
    assert sum(c for _, c in r.queue_breakdown) == r.total_spend
    assert sum(d.total for d in r.daily) == r.total_spend
    assert r.component_breakdown.total == r.total_spend
    assert sum(d.total_cost for d in r.top_drivers) == r.total_spend
    assert r.total_jobs == sum(x.total_jobs for x in rows) == sum(d.jobs for d in r.daily)
    for d in r.daily:
        assert d.total == sum(c.total_cost for c in d.queues)
    for driver in r.top_drivers:
        assert driver.breakdown.total == driver.total_cost


def test_days_are_zero_filled_up_to_today() -> None:
    r = build([row(day(2), "a", cpu="3"), row(day(5), "b", cpu="4")], today=day(7))
    assert [d.date for d in r.daily] == [day(n) for n in range(1, 8)]
    assert [d.total for d in r.daily] == [0, 3, 0, 0, 4, 0, 0]
    assert r.daily[0].queues == () and r.daily[0].jobs == 0
    assert [c.queue_name for c in r.daily[1].queues] == ["a"]


def test_past_period_covers_every_day_and_future_period_none() -> None:
    assert len(build([row(day(3), "a", cpu="1")], today=date(2027, 2, 1)).daily) == 30
    future = build([], today=day(20, month=10))
    assert future.daily == () and future.total_spend == 0 and future.top_drivers == ()


def test_a_job_stamped_slightly_ahead_of_today_still_adds_up() -> None:
    r = build([row(day(20), "a", cpu="1"), row(day(21), "a", cpu="2")], today=day(20))
    assert r.daily[-1].date == day(21) and r.total_spend == sum(d.total for d in r.daily) == 3


def test_rows_before_the_period_and_of_other_tenants_are_not_counted() -> None:
    rows = [row(day(28, month=10), "a", cpu="100"), row(day(3), "a", cpu="5"), row(day(3), "a", tenant="x", cpu="7")]
    r = build(rows)
    assert r.total_spend == 5 and r.queue_breakdown == (("a", D(5)),)


def test_drivers_sorted_by_cost_with_rounded_percentages_and_exact_averages() -> None:
    rows = [
        row(day(1), "small", jobs=3, cpu="1"),
        row(day(1), "big", jobs=4, cpu="2"),
        row(day(2), "mid_b", jobs=1, cpu="1.5"),
        row(day(2), "mid_a", jobs=1, cpu="1.5"),
    ]
    r = build(rows)
    assert [d.queue_name for d in r.top_drivers] == ["big", "mid_a", "mid_b", "small"]
    assert [q for q, _ in r.queue_breakdown] == ["big", "mid_a", "mid_b", "small"]
    big, _, _, small = r.top_drivers
    assert big.percentage == D("33.33") and small.percentage == D("16.67")
    assert big.avg_cost_per_job == D("0.5") and small.avg_cost_per_job == D("0.333333333")
    assert big.job_count == 4


def test_unresolved_period_is_rejected() -> None:
    with pytest.raises(ValidationError, match="period"):
        build_report(
            tenant_id="acme", period=BudgetPeriod("monthly"), daily_costs=[], budgets=(), forecast=None, today=day(1)
        )


def test_lookback_reaches_14_days_before_the_last_day() -> None:
    assert lookback_start(NOV, day(3)) == day(20, month=10)
    assert lookback_start(NOV, day(25)) == day(1)
    assert lookback_start(NOV, date(2027, 1, 5)) == day(1)


# -- the budget compared with -------------------------------------------------------------


def test_budget_amount_tenant_wide_then_queue_sum_then_none() -> None:
    rows = [row(day(1), "a", cpu="250")]
    tenant = build(rows, budgets=(line("", "2000"), line("", "1000"), line("a", "50")))
    assert (tenant.budget_amount, tenant.budget_basis, tenant.utilization) == (D(1000), "tenant", D("0.25"))
    weekly = line("", "9", "weekly", period_start=day(16), period_end=day(22))
    queues = build(rows, budgets=(line("a", "300"), line("a", "200"), line("b", "300"), weekly))
    assert (queues.budget_amount, queues.budget_basis) == (D(500), "queues")
    none = build(rows, budgets=(line("", "100", "daily", period_start=day(20), period_end=day(20)),))
    assert (none.budget_amount, none.budget_basis, none.utilization) == (None, "none", None)
    custom = BudgetPeriod("custom", start_date=day(1), end_date=day(30))
    assert build(rows, period=custom, budgets=(line("", "400"),)).budget_amount == 400


# -- recommendations ------------------------------------------------------------------------


def test_no_recommendation_when_the_data_does_not_call_for_one() -> None:
    assert build(steady()).recommendations == ()
    assert build([]).recommendations == ()


def growth_rows(before: str, after: str, queue: str = "q_2w") -> list[DailyCost]:
    # complete days are up to 2026-11-19 (today, the 20th, is still running)
    rows = [row(day(d), queue, cost=before) for d in range(6, 13)] + [
        row(day(d), queue, cost=after) for d in range(13, 20)
    ]
    rows.append(row(day(20), queue, jobs=100_000, cost="100000"))  # today: partial, not compared
    return rows + [row(day(d), "steady", cost="50") for d in range(6, 21)]


def test_week_over_week_growth_names_the_queue_the_percentage_and_the_dollars() -> None:
    (text,) = build(growth_rows("100", "150") + growth_rows("10", "20", "small")).recommendations
    assert "q_2w grew 50.0 % week over week" in text
    assert "$1,050.00 in the 7 days to 2026-11-19" in text and "$700.00 in the 7 days before" in text
    assert "(+$350.00)" in text


@pytest.mark.parametrize(
    ("before", "after"),
    [("100", "120"), ("100", "90"), ("0", "150")],  # +20 %: too little; shrinking; nothing before
)
def test_week_over_week_growth_stays_silent(before: str, after: str) -> None:
    assert build(growth_rows(before, after)).recommendations == ()


def test_growth_early_in_the_month_uses_the_days_before_the_period() -> None:
    rows = [row(day(d, month=10), "q", cost="10") for d in range(20, 27)]
    rows += [row(day(d, month=10), "q", cost="30") for d in range(27, 32)] + [
        row(day(n), "q", cost="30") for n in (1, 2)
    ]
    (text,) = build(rows, today=day(3)).recommendations
    assert "q grew 200.0 %" in text and "7 days to 2026-11-02" in text
    assert build(rows, today=day(3)).total_spend == 60


def test_a_dominant_component_is_named_with_its_share_and_cost() -> None:
    rows = [row(day(1), "q_2w", memory="962.96", cpu="271.60"), row(day(1), "other", cpu="400", memory="400")]
    (text,) = build(rows).recommendations
    assert text.startswith("Memory is 78 % of q_2w's cost ($962.96 of $1,234.56): right-size memory")


def test_base_cost_dominance_suggests_batching() -> None:
    (text,) = build([row(day(1), "tiny", jobs=1000, base="9", cpu="1")]).recommendations
    assert "The per-job base cost is 90 % of tiny's cost" in text and "batch" in text


def test_no_component_advice_at_60_percent_or_for_small_queues() -> None:
    even = [row(day(1), "q", memory="60", cpu="40")]
    assert build(even).recommendations == ()
    small = [row(day(1), "tiny", memory="9"), row(day(1), "big", cpu="50", memory="50")]
    assert build(small).recommendations == ()  # tiny is 8 % of the spend


def outlier_rows(spike: str, jobs: int = 10) -> list[DailyCost]:
    rows = [row(day(d), "q_ml", jobs=10, cost="10") for d in (1, 2, 3, 4)]
    return [*rows, row(day(5), "q_ml", jobs=jobs, cost=spike)]


def test_cost_per_job_outlier_names_the_day_and_the_ratio() -> None:
    (text,) = build(outlier_rows("50")).recommendations
    assert text.startswith("On 2026-11-05, jobs on q_ml cost $5.0000 each on average (10 jobs, $50.00)")
    assert "5.0× the $1.0000 of its other days" in text and "about $40.00 more than usual" in text


@pytest.mark.parametrize(("spike", "jobs"), [("19", 10), ("50", 9)])  # 1.9×; too few jobs that day
def test_cost_per_job_outlier_stays_silent(spike: str, jobs: int) -> None:
    assert build(outlier_rows(spike, jobs)).recommendations == ()


def test_projected_overrun_names_the_date_and_the_forecast() -> None:
    f = fake_forecast(
        as_of=day(15),
        days_until_overrun=9,
        predicted_spend=D("12345.67"),
        budget_utilization=D("1.234567"),
        lower_80=D("11000"),
        upper_80=D("13500"),
    )
    (text,) = build(steady(("a",)), forecast=f, today=day(15), budgets=(line("", "10000"),)).recommendations
    assert "budget of $10,000.00 runs out on 2026-11-24 (in 9 days), before its period ends on 2026-11-30" in text
    assert "forecast spend $12,345.67 (123 % of the budget; 80 % range $11,000.00 to $13,500.00)" in text
    assert "cut spend on a, the biggest driver" in text


def test_a_budget_already_spent_says_so() -> None:
    f = fake_forecast(
        days_until_overrun=0, current_spend=D("10500"), predicted_spend=D(15000), budget_utilization=D(1.5)
    )
    (text,) = build(steady(("a",)), forecast=f).recommendations
    assert text.startswith("The tenant-wide budget of $10,000.00 is already spent ($10,500.00 by 2026-11-20)")
    f = replace(f, current_spend=D("9000"))
    assert "runs out on 2026-11-20 (today)" in build(steady(("a",)), forecast=f).recommendations[0]


def test_no_overrun_advice_without_one_or_after_the_period() -> None:
    for days in (None, 16):  # 2026-12-01 is after the period
        f = fake_forecast(as_of=day(15), days_until_overrun=days, budget_utilization=D("0.9"))
        assert build(steady(), forecast=f, today=day(15), budgets=(line(),)).recommendations == ()


def test_an_underused_budget_gets_a_suggested_amount() -> None:
    f = fake_forecast(budget_utilization=D("0.34"), predicted_spend=D("3400"), upper_80=D("3712.34"))
    (text,) = build(steady(), forecast=f, budgets=(line("", "10000"),)).recommendations
    assert "budget of $10,000.00 is forecast to be only 34 % used ($3,400.00 by 2026-11-30)" in text
    assert "consider lowering it to $3,800.00" in text and "($3,712.34) rounded up" in text


@pytest.mark.parametrize(
    "forecast",
    [
        fake_forecast(budget_utilization=D("0.5")),
        fake_forecast(budget_utilization=D("0.1"), upper_80=D("9999")),  # rounds up to the budget itself
        fake_forecast(budget_utilization=D("0"), predicted_spend=D(0), upper_80=D(0)),
    ],
)
def test_no_underuse_advice_when_not_far_under_or_nothing_better(forecast: FakeForecast) -> None:
    assert build(steady(), forecast=forecast, budgets=(line("", "10000"),)).recommendations == ()


def test_recommendations_come_most_urgent_first() -> None:
    f = fake_forecast(days_until_overrun=3, budget_utilization=D("1.5"))
    rows = [*growth_rows("100", "150"), row(day(1), "mem", jobs=500_000, memory="50000")]
    texts = build(rows, forecast=f, budgets=(line("", "10000"),)).recommendations
    assert [t.split()[0] for t in texts] == ["At", "Spend", "Memory"]


@pytest.mark.parametrize(
    ("value", "nice"),
    [("3712.34", "3800"), ("123.4", "130"), ("8.7", "9"), ("0.42", "1"), ("100", "100"), ("0", "0")],
)
def test_round_up_nicely(value: str, nice: str) -> None:
    assert round_up_nicely(D(value)) == D(nice)


def test_report_is_frozen_and_generated_at_defaults_to_the_day() -> None:
    r = build([], today=day(2))
    assert r.generated_at == datetime(2026, 11, 2, tzinfo=UTC)
    with pytest.raises(AttributeError):
        r.total_spend = D(1)  # type: ignore[misc]
    assert replace(r, recommendations=("x",)).recommendations == ("x",)
    assert timedelta(days=r.period_days - 1) == NOV.end_date - NOV.start_date  # type: ignore[operator]


def test_growth_from_almost_nothing_is_not_a_huge_percentage() -> None:
    # found by the demo: a queue with a fraction of a cent the week before "grew 535697001.8 %"
    (text,) = build(growth_rows("0.000000001", "150")).recommendations
    assert "%" not in text.split("check")[0]
    assert "rose from almost nothing to $1,050.00 in the 7 days to 2026-11-19" in text
