"""Spend forecasts: ``from jobbudget.forecasting import forecast_spend, Forecast``.

The model and the evidence behind it are described in
:mod:`jobbudget.domain.forecast_model`; :func:`backtest` measures it on any daily
series (a tenant's own history, or the public series in the benchmarks).
"""

from __future__ import annotations

from .domain.forecast_backtest import CUT_DAYS, BacktestPoint, BacktestResult, backtest
from .domain.forecasting import Forecast, forecast_spend

__all__ = ["CUT_DAYS", "BacktestPoint", "BacktestResult", "Forecast", "backtest", "forecast_spend"]
