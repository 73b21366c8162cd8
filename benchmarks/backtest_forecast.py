"""Backtest the spend forecast on real daily series and time it.

.venv/bin/python benchmarks/backtest_forecast.py [--quick]

Series (``$JOBBUDGET_DATA_DIR``, default the repository's ``data/``):

* ``peyton_manning``: exp(y) of Prophet's example (daily Wikipedia page views,
  2007-12 to 2016-01) as daily "spend"; months with a missing day are skipped.
* ``wagap_core_hours`` / ``wagap_jobs``: core-hours and jobs submitted per UTC day
  of the MetaCentrum trace (``derived_wagap_daily_core_hours.csv``).
* ``wagap_<queue>``: core-hours (run time × processors) submitted per UTC day to
  each queue with at least 1,000 jobs in ``alea_wagap-2013.swf``; days without jobs
  are 0.  (The SWIM Facebook trace spans a single day, so it gives no daily series.)

For every fully covered month, the month's total is forecast on the 5th, 10th,
15th, 20th and 25th from the days before only (:func:`jobbudget.forecasting.backtest`)
and compared with the truth and with the run rate.  The MetaCentrum trace covers
only January and February 2013 fully, so each of its series has 10 forecasts: its
coverage can only be 0 %, 10 %, ..., 100 %, and even a perfectly calibrated 80 %
interval lands in 72-88 % (exactly 8 of 10) only 30 % of the time; the pooled row
of all MetaCentrum series is the meaningful coverage figure for them.
"""

from __future__ import annotations

import argparse
import collections
import csv
import math
import os
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import report

from jobbudget.demo import PACKAGED_TRACE, find_trace
from jobbudget.domain.money import round_money
from jobbudget.forecasting import BacktestPoint, BacktestResult, backtest, forecast_spend
from jobbudget.importers import open_input

DATA = Path(os.environ.get("JOBBUDGET_DATA_DIR", Path(__file__).resolve().parents[1] / "data"))
Series = list[tuple[date, Decimal]]
MIN_QUEUE_JOBS = 1000
TIMING_DAYS = 90


def _money(value: float) -> Decimal:
    return round_money(Decimal(repr(value)))


def _data_file(name: str) -> Path:
    """``DATA/name``, or its gzip-compressed copy."""
    path = DATA / name
    return path if path.is_file() else path.with_name(f"{path.name}.gz")


def load_series(quick: bool) -> dict[str, tuple[Series, bool]]:
    """name -> (daily history, whether every day of a month must be present)."""
    out: dict[str, tuple[Series, bool]] = {}
    with open_input(str(_data_file("forecast/prophet_example_wp_log_peyton_manning.csv"))) as fh:
        pm = [(date.fromisoformat(r["ds"]), _money(math.exp(float(r["y"])))) for r in csv.DictReader(fh)]
    out["peyton_manning"] = (pm[-400:] if quick else pm, True)
    with open_input(str(_data_file("forecast/derived_wagap_daily_core_hours.csv"))) as fh:
        rows = list(csv.DictReader(fh))
    out["wagap_core_hours"] = ([(date.fromisoformat(r["ds"]), Decimal(r["core_hours_submitted"])) for r in rows], False)
    out["wagap_jobs"] = ([(date.fromisoformat(r["ds"]), Decimal(r["jobs_submitted"])) for r in rows], False)
    if quick:
        return out
    per_queue: dict[str, dict[date, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    jobs: collections.Counter[str] = collections.Counter()
    days: set[date] = set()
    with open_input(str(find_trace() or PACKAGED_TRACE)) as fh:
        for line in fh:
            if line.startswith(";") or not line.strip():
                continue
            f = line.split()
            day = datetime.fromtimestamp(int(f[1]), UTC).date()
            days.add(day)
            per_queue[f[19]][day] += max(float(f[3]), 0.0) * max(float(f[4]), 0.0) / 3600
            jobs[f[19]] += 1
    every_day = [min(days) + timedelta(days=i) for i in range((max(days) - min(days)).days + 1)]
    for queue, count in jobs.most_common():
        if count >= MIN_QUEUE_JOBS:
            out[f"wagap_{queue}"] = ([(d, _money(per_queue[queue].get(d, 0.0))) for d in every_day], False)
    return out


def pooled(results: list[BacktestResult]) -> dict[str, Any]:
    points: list[BacktestPoint] = [p for r in results for p in r.points]
    n = len(points)
    return {
        "forecasts": n,
        "mape_pct": 100 * sum(p.error for p in points) / n,
        "run_rate_mape_pct": 100 * sum(p.run_rate_error for p in points) / n,
        "within_10_pct": 100 * sum(p.error <= 0.1 for p in points) / n,
        "run_rate_within_10_pct": 100 * sum(p.run_rate_error <= 0.1 for p in points) / n,
        "coverage_80_pct": 100 * sum(p.lower_80 <= p.actual <= p.upper_80 for p in points) / n,
        "coverage_95_pct": 100 * sum(p.lower_95 <= p.actual <= p.upper_95 for p in points) / n,
    }


def figures(r: BacktestResult) -> dict[str, Any]:
    return {
        "forecasts": r.forecasts,
        "months": r.months,
        "mape_pct": 100 * r.mape,
        "run_rate_mape_pct": 100 * r.run_rate_mape,
        "within_10_pct": 100 * r.within_10,
        "run_rate_within_10_pct": 100 * r.run_rate_within_10,
        "coverage_80_pct": 100 * r.coverage_80,
        "coverage_95_pct": 100 * r.coverage_95,
        "methods": dict(collections.Counter(p.method for p in r.points)),
    }


def time_forecast(history: Series, calls: int) -> float:
    """Milliseconds per forecast_spend call on a 90-day history (best of 3 runs)."""
    window = history[-TIMING_DAYS:]
    as_of = window[-1][0] + timedelta(days=1)
    period_start = as_of.replace(day=1)
    end = (period_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    spent = sum((v for d, v in window if d >= period_start), Decimal(0))

    def once() -> None:
        forecast_spend(
            history=window,
            period_start=period_start,
            period_end=end,
            as_of=as_of,
            budget_amount=Decimal(10**6),
            current_spend=spent,
        )

    once()
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            once()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few months only: checks the script runs")
    args = parser.parse_args()
    started = time.perf_counter()
    series = load_series(args.quick)
    results = {name: backtest(history, require_every_day=strict) for name, (history, strict) in series.items()}
    table = {name: figures(r) for name, r in results.items()}
    wagap = [r for name, r in results.items() if name.startswith("wagap_")]
    table["wagap_pooled"] = pooled(wagap)
    ms = time_forecast(series["wagap_core_hours"][0], 50 if args.quick else 1000)
    print(f"{'series':<20} {'n':>4} {'MAPE':>7} {'run rate':>8} {'±10%':>6} {'rr ±10%':>8} {'cov80':>6} {'cov95':>6}")
    for name, f in table.items():
        print(
            f"{name:<20} {f['forecasts']:>4} {f['mape_pct']:>6.1f}% {f['run_rate_mape_pct']:>7.1f}% "
            f"{f['within_10_pct']:>5.0f}% {f['run_rate_within_10_pct']:>7.0f}% "
            f"{f['coverage_80_pct']:>5.0f}% {f['coverage_95_pct']:>5.0f}%"
        )
    per_series = [f for name, f in table.items() if name != "wagap_pooled"]
    checks = {
        "mape_not_above_run_rate_on_every_series": all(f["mape_pct"] <= f["run_rate_mape_pct"] for f in per_series),
        "mape_below_run_rate_on_average": sum(f["mape_pct"] for f in per_series)
        < sum(f["run_rate_mape_pct"] for f in per_series),
        "coverage_80_in_72_88_on_every_series": all(72 <= f["coverage_80_pct"] <= 88 for f in per_series),
        "coverage_95_in_88_99_on_every_series": all(88 <= f["coverage_95_pct"] <= 99 for f in per_series),
        "ms_per_forecast_at_most_5": ms <= 5,
    }
    print(f"forecast_spend on a {TIMING_DAYS}-day history: {ms:.2f} ms per forecast")
    for name, ok in checks.items():
        print(f"{'ok ' if ok else 'NOT'} {name}")
    report(
        "forecast_backtest",
        {
            "quick": args.quick,
            "series": table,
            "ms_per_forecast_90_days": round(ms, 3),
            "targets": checks,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
