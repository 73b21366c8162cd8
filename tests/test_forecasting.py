"""The spend forecast as a pure function, and its backtest (domain only, no service)."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import DATA_DIR
from jobbudget.domain.errors import ValidationError
from jobbudget.forecasting import BacktestResult, Forecast, backtest, forecast_spend
from jobbudget.importers import open_input

History = list[tuple[date, Decimal]]
MONDAY = date(2024, 3, 4)
NANO_EXPONENT = -9


def series(days: int, *, end: date, value: Callable[[date, int], float]) -> History:
    """``days`` daily amounts ending the day before ``end``; ``value(day, index)``."""
    start = end - timedelta(days=days)
    return [
        (start + timedelta(days=i), Decimal(repr(round(value(start + timedelta(days=i), i), 6)))) for i in range(days)
    ]


def noisy(level: float, sd: float, seed: int, pattern: Sequence[float] = (1.0,) * 7) -> Callable[[date, int], float]:
    rng = random.Random(seed)
    return lambda day, _i: max(0.0, level * pattern[day.weekday()] * (1 + rng.gauss(0, sd)))


def forecast(
    history: History,
    *,
    as_of: date,
    period_start: date | None = None,
    period_end: date | None = None,
    amount: str = "1000000",
    spent: str | None = None,
    observed_today: str = "0",
) -> Forecast:
    start = period_start or as_of
    end = period_end or start + timedelta(days=29)
    current = Decimal(spent) if spent is not None else sum((v for d, v in history if d >= start), Decimal(0))
    return forecast_spend(
        history=history,
        period_start=start,
        period_end=end,
        as_of=as_of,
        budget_amount=Decimal(amount),
        current_spend=current,
        observed_today=Decimal(observed_today),
    )


def width(f: Forecast, level: int = 95) -> Decimal:
    return (f.upper_95 - f.lower_95) if level == 95 else (f.upper_80 - f.lower_80)


# -- short history, zero and flat history ------------------------------------------


def test_fewer_than_14_days_use_the_run_rate_with_a_wider_interval() -> None:
    short = series(10, end=MONDAY, value=noisy(100, 0.2, 1))
    f = forecast(short, as_of=MONDAY)
    assert f.method.startswith("run-rate") and "14 days" in f.method
    rate = sum((v for _, v in short[-7:]), Decimal(0)) / 7
    assert abs(f.predicted_spend - rate * 30) < Decimal("0.00001")
    assert f.day_of_week_factors == (1.0,) * 7
    long = forecast(series(60, end=MONDAY, value=noisy(100, 0.2, 1)), as_of=MONDAY)
    assert not long.method.startswith("run-rate")
    assert width(f) / f.predicted_spend > Decimal("1.5") * width(long) / long.predicted_spend
    assert not forecast(series(14, end=MONDAY, value=noisy(100, 0.2, 1)), as_of=MONDAY).method.startswith("run-rate")


def test_all_zero_history_forecasts_zero_with_a_zero_width_interval() -> None:
    f = forecast(series(40, end=MONDAY, value=lambda d, i: 0.0), as_of=MONDAY)
    assert f.predicted_spend == f.lower_95 == f.upper_95 == 0
    assert f.days_until_overrun is None and f.trend_direction == "stable"
    assert forecast([], as_of=MONDAY).predicted_spend == 0


def test_flat_history_gives_a_narrow_interval() -> None:
    f = forecast(series(60, end=MONDAY, value=lambda d, i: 100.0), as_of=MONDAY)
    assert f.predicted_spend == Decimal(3000)
    assert Decimal(0) < width(f) < f.predicted_spend * Decimal("0.1")
    assert all(v == Decimal(100) for _, v in f.daily_projection)


# -- weekly pattern, trend, overrun ----------------------------------------------------

PATTERN = (1.3, 1.2, 1.1, 1.1, 1.0, 0.6, 0.7)


def test_weekly_pattern_is_learned_from_the_data() -> None:
    f = forecast(series(140, end=MONDAY, value=noisy(100, 0.1, 7, PATTERN)), as_of=MONDAY)
    mean = sum(PATTERN) / 7
    assert len(f.day_of_week_factors) == 7 and math.isclose(sum(f.day_of_week_factors) / 7, 1.0)
    for learned, true in zip(f.day_of_week_factors, PATTERN, strict=True):
        assert learned == pytest.approx(true / mean, abs=0.08)
    by_weekday = {d.weekday(): v for d, v in f.daily_projection[:7]}
    assert by_weekday[0] > by_weekday[3] > by_weekday[5]
    # A short history learns a weaker pattern (shrunk toward 1).
    short = forecast(series(21, end=MONDAY, value=noisy(100, 0.1, 7, PATTERN)), as_of=MONDAY)
    assert 1 < short.day_of_week_factors[0] < f.day_of_week_factors[0]


@pytest.mark.parametrize("seed", range(6))
def test_flat_noisy_spend_is_stable(seed: int) -> None:
    f = forecast(series(60, end=MONDAY, value=noisy(100, 0.3, seed, PATTERN)), as_of=MONDAY)
    assert f.trend_direction == "stable"


@pytest.mark.parametrize(("slope", "expected"), [(2.0, "increasing"), (-1.5, "decreasing")])
def test_clear_growth_or_decline_is_significant(slope: float, expected: str) -> None:
    rng = random.Random(3)
    history = series(
        56, end=MONDAY, value=lambda d, i: (100 + slope * i) * PATTERN[d.weekday()] * (1 + rng.gauss(0, 0.1))
    )
    assert forecast(history, as_of=MONDAY).trend_direction == expected


def test_days_until_overrun_follows_the_weekday_projection() -> None:
    # Spend on weekdays only.  From a Saturday, the flat average (~71/day) would
    # cross 100 on Sunday; the seasonal projection knows weekends are quiet.
    history = series(112, end=MONDAY, value=lambda d, i: 100.0 if d.weekday() < 5 else 0.0)
    saturday = MONDAY + timedelta(days=5)
    history += [(MONDAY + timedelta(days=i), Decimal(100)) for i in range(5)]
    f = forecast(history, as_of=saturday, period_start=saturday, amount="100", spent="0")
    cumulative, expected = Decimal(0), None
    for i, (_, v) in enumerate(f.daily_projection):
        cumulative += v
        if cumulative > 100:
            expected = i
            break
    assert f.days_until_overrun == expected == 2  # Monday
    assert (saturday + timedelta(days=f.days_until_overrun)).weekday() == 0
    assert "Cut spend by" in f.recommendation and "/day" in f.recommendation


def test_overrun_none_when_on_track_and_zero_when_already_over() -> None:
    history = series(60, end=MONDAY, value=noisy(100, 0.1, 2))
    ok = forecast(history, as_of=MONDAY, amount="100000")
    assert ok.days_until_overrun is None and ok.recommendation.startswith("On track")
    over = forecast(history, as_of=MONDAY, amount="500", spent="600")
    assert over.days_until_overrun == 0 and over.recommendation.startswith("Already over budget")
    assert over.predicted_spend > Decimal(600) and over.lower_95 >= Decimal(600)


def test_recommendation_names_the_cut_per_day_and_an_amount() -> None:
    history = series(60, end=MONDAY, value=lambda d, i: 100.0)
    f = forecast(history, as_of=MONDAY, amount="2000", spent="0")  # projected 3,000 over 30 days
    assert f.predicted_spend == Decimal(3000) and f.budget_utilization == Decimal("1.5")
    assert "Cut spend by 33.33/day (from 100.00 to 66.67/day)" in f.recommendation
    assert "set the amount to 3,000.00" in f.recommendation
    assert f.days_until_overrun == 20


# -- robustness ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("new_level", [30.0, 300.0])
def test_a_lasting_level_shift_is_followed_within_a_week(seed: int, new_level: float) -> None:
    # Twelve stable weeks (where the steady weekly-average level is chosen), then
    # spend drops to 30 % or jumps to 3× for good.
    rng = random.Random(seed)

    def value(day: date, i: int) -> float:
        return (100.0 if i < 84 else new_level) * PATTERN[day.weekday()] * (1 + rng.gauss(0, 0.1))

    history = series(91, end=MONDAY + timedelta(days=7), value=value)
    assert "steady" in forecast(history[:84], as_of=MONDAY, spent="0").method
    f = forecast(history, as_of=MONDAY + timedelta(days=7), spent="0")
    at_new_level = Decimal(repr(new_level * 30 * sum(PATTERN) / 7))
    assert at_new_level * Decimal("0.8") < f.predicted_spend < at_new_level * Decimal("1.3")


def test_absent_days_count_as_zero() -> None:
    full = series(60, end=MONDAY, value=lambda d, i: 0.0 if i % 9 == 4 else 100.0 + i)
    gaps = [(d, v) for d, v in full if v != 0]
    assert forecast(gaps, as_of=MONDAY, spent="0") == forecast(full, as_of=MONDAY, spent="0")


def test_repeated_dates_are_added_up() -> None:
    history = series(30, end=MONDAY, value=noisy(50, 0.2, 4))
    split = [(d, v / 2) for d, v in history] * 2
    assert (
        forecast(split, as_of=MONDAY, spent="0").predicted_spend
        == forecast(history, as_of=MONDAY, spent="0").predicted_spend
    )


def test_a_spike_moves_the_forecast_far_less_than_the_run_rate() -> None:
    flat = series(60, end=MONDAY, value=lambda d, i: 100.0)
    plain = forecast(flat, as_of=MONDAY, spent="0").predicted_spend
    recent = [(d, Decimal(10_000) if i == 57 else v) for i, (d, v) in enumerate(flat)]
    spiked = forecast(recent, as_of=MONDAY, spent="0").predicted_spend
    run_rate = sum((v for _, v in recent[-7:]), Decimal(0)) / 7 * 30
    assert spiked < plain * Decimal("2.5") and run_rate > plain * 14
    old = [(d, Decimal(10_000) if i == 35 else v) for i, (d, v) in enumerate(flat)]
    assert forecast(old, as_of=MONDAY, spent="0").predicted_spend == pytest.approx(plain, rel=Decimal("0.02"))


# -- intervals and types -------------------------------------------------------------


def test_intervals_contain_the_prediction_and_widen_with_the_horizon() -> None:
    history = series(90, end=MONDAY, value=noisy(100, 0.3, 5, PATTERN))
    widths = []
    for days in (7, 14, 28):
        f = forecast(history, as_of=MONDAY, period_end=MONDAY + timedelta(days=days - 1), spent="0")
        assert 0 <= f.lower_95 <= f.lower_80 <= f.predicted_spend <= f.upper_80 <= f.upper_95
        widths.append(width(f))
    assert widths[0] < widths[1] < widths[2]
    mid = forecast(history[:-10], as_of=MONDAY - timedelta(days=10), period_start=MONDAY - timedelta(days=20))
    assert mid.lower_80 >= mid.current_spend > 0


def test_money_is_decimal_to_the_nano_dollar() -> None:
    f = forecast(series(45, end=MONDAY, value=noisy(123.456789, 0.2, 6, PATTERN)), as_of=MONDAY, amount="5000")
    for value in (f.predicted_spend, f.lower_80, f.upper_80, f.lower_95, f.upper_95, f.budget_utilization):
        assert isinstance(value, Decimal)
    for value in (f.predicted_spend, f.lower_80, f.upper_95):
        assert value == value.quantize(Decimal(10) ** NANO_EXPONENT)  # at most nine decimals
    assert all(isinstance(v, Decimal) and isinstance(d, date) for d, v in f.daily_projection)
    assert [d for d, _ in f.daily_projection] == [MONDAY + timedelta(days=i) for i in range(30)]
    assert f.predicted_spend == f.current_spend + sum((v for _, v in f.daily_projection), Decimal(0))
    assert all(isinstance(x, float) for x in f.day_of_week_factors)
    assert f.period_end == MONDAY + timedelta(days=29) and f.as_of == MONDAY


def test_partial_spend_today_raises_the_projection_of_today() -> None:
    history = series(60, end=MONDAY, value=lambda d, i: 100.0)
    base = forecast(history, as_of=MONDAY, spent="0")
    busy = forecast(history, as_of=MONDAY, spent="0", observed_today="250")
    assert busy.daily_projection[0][1] == Decimal(250)
    assert busy.predicted_spend - base.predicted_spend == Decimal(150)
    assert busy.upper_95 - base.upper_95 == Decimal(150)
    quiet = forecast(history, as_of=MONDAY, spent="0", observed_today="40")
    assert quiet.predicted_spend == base.predicted_spend


def test_no_interval_goes_below_what_is_already_spent() -> None:
    """Found by a newcomer in the dashboard: with most of the period's spend made today
    (a lumpy history), the 80 % and 95 % lower bounds fell below the spend already seen."""
    history = series(60, end=MONDAY, value=lambda d, i: 500.0 if i % 7 == 0 else 1.0)
    f = forecast(history, as_of=MONDAY, period_end=MONDAY + timedelta(days=2), spent="100", observed_today="900")
    assert min(f.lower_80, f.lower_95) >= Decimal(1000)
    assert f.lower_95 <= f.lower_80 <= f.predicted_spend <= f.upper_80 <= f.upper_95
    assert "remaining 3 days" in f.recommendation or "remaining" not in f.recommendation


def test_invalid_input_is_rejected() -> None:
    history = series(20, end=MONDAY, value=lambda d, i: 1.0)
    with pytest.raises(ValidationError, match="before as_of"):
        forecast([*history, (MONDAY, Decimal(1))], as_of=MONDAY)
    with pytest.raises(ValidationError, match="as_of"):
        forecast(history, as_of=MONDAY, period_start=MONDAY + timedelta(days=1))
    with pytest.raises(ValidationError, match="non-negative"):
        forecast([(MONDAY - timedelta(days=1), Decimal(-1))], as_of=MONDAY)


def test_the_day_after_the_period_projects_nothing() -> None:
    history = series(40, end=MONDAY, value=lambda d, i: 10.0)
    f = forecast(history, as_of=MONDAY, period_start=MONDAY - timedelta(days=10), period_end=MONDAY - timedelta(days=1))
    assert f.daily_projection == () and f.predicted_spend == f.current_spend == Decimal(100)
    assert f.recommendation.startswith("The period is over")


# -- backtest ---------------------------------------------------------------------------


def test_backtest_of_a_constant_series_is_exact() -> None:
    history = [(date(2024, 1, 1) + timedelta(days=i), Decimal(10)) for i in range(120)]  # Jan..Apr 29
    result = backtest(history)
    assert (result.months, result.forecasts) == (3, 15)  # January to March
    assert result.mape == result.run_rate_mape == 0 and result.within_10 == 1
    assert result.coverage_80 == result.coverage_95 == 1
    assert {p.as_of.day for p in result.points} == {5, 10, 15, 20, 25}
    assert backtest([]).forecasts == 0
    with pytest.raises(ValidationError):
        backtest(history, cut_days=(1,))


def test_backtest_skips_incomplete_months_when_every_day_is_required() -> None:
    history = [(date(2024, 1, 1) + timedelta(days=i), Decimal(10)) for i in range(91) if i != 40]  # Feb 10 missing
    assert backtest(history).months == 3
    assert backtest(history, require_every_day=True).months == 2


def _real_series(name: str, column: str, transform: Callable[[float], float]) -> History:
    path = DATA_DIR / "forecast" / name
    if not path.is_file():
        path = path.with_name(f"{name}.gz")
    with open_input(str(path)) as fh:
        return [(date.fromisoformat(r["ds"]), Decimal(repr(transform(float(r[column]))))) for r in csv.DictReader(fh)]


def test_backtest_on_real_grid_core_hours() -> None:
    result = backtest(_real_series("derived_wagap_daily_core_hours.csv", "core_hours_submitted", float))
    assert isinstance(result, BacktestResult)
    assert (result.months, result.forecasts) == (2, 10)  # January and February 2013
    assert 0 < result.mape < 0.3 and result.mape <= result.run_rate_mape
    assert sum(p.method.startswith("run-rate") for p in result.points) == 2  # Jan 5 and 10: < 14 days
    assert result.coverage_95 >= 0.7


def test_backtest_on_real_page_views_beats_the_run_rate() -> None:
    views = _real_series("prophet_example_wp_log_peyton_manning.csv", "y", math.exp)[-700:]
    result = backtest(views, require_every_day=True)
    assert result.forecasts >= 80
    assert result.mape < result.run_rate_mape
    assert 0.65 <= result.coverage_80 <= 0.95 and 0.8 <= result.coverage_95 <= 1.0


def test_backtest_benchmark_runs_quick(tmp_path: Path) -> None:
    _real_series("derived_wagap_daily_core_hours.csv", "core_hours_submitted", float)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "backtest_forecast.py"
    env = {**os.environ, "JOBBUDGET_BENCH_RESULTS": str(tmp_path), "JOBBUDGET_DATA_DIR": str(DATA_DIR)}
    done = subprocess.run(
        [sys.executable, str(script), "--quick"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads((tmp_path / "forecast_backtest.json").read_text())
    assert figures["quick"] is True and figures["ms_per_forecast_90_days"] > 0
    assert {"peyton_manning", "wagap_core_hours", "wagap_jobs", "wagap_pooled"} <= set(figures["series"])
    assert figures["series"]["wagap_core_hours"]["forecasts"] == 10
    assert "MAPE" in done.stdout and "ms per forecast" in done.stdout
