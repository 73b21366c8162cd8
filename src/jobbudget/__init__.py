"""jobbudget: exact job costs, budgets and graduated enforcement for multi-tenant queues."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import Config
from .domain.budget import Budget, EnforcementPolicy, NotificationChannel, validate_budget
from .domain.cost import (
    CostBreakdown,
    CostCalculationEngine,
    CostModel,
    JobCost,
    JobMetrics,
    default_cost_model,
    production_cost_model,
    seed_cost_model,
    staging_cost_model,
)
from .domain.enforcement import Admission, EnforcementAction
from .domain.errors import (
    AuthenticationError,
    BudgetError,
    ConflictError,
    EnforcementError,
    JobBudgetError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    StorageFullError,
    StorageReadOnlyError,
    StorageUnavailableError,
    ValidationError,
    error_code,
    is_permanent,
    is_retryable,
)
from .domain.periods import BudgetPeriod
from .domain.records import AuditEntry, CostModelVersion, DailyCost
from .service import BudgetService, BudgetStatus

if TYPE_CHECKING:
    from .domain.calibration import BenchmarkResult, CalibrationReport, ModelCalibrator
    from .domain.forecasting import Forecast, forecast_spend
    from .domain.reporting import BudgetReport, CostDriver
    from .integrations.meter import BudgetBlocked, meter

__version__ = "0.1.0"

#: Analytics names load on first use, so ``import jobbudget`` does not import numpy.
_LAZY = {
    "BenchmarkResult": "jobbudget.domain.calibration",
    "CalibrationReport": "jobbudget.domain.calibration",
    "ModelCalibrator": "jobbudget.domain.calibration",
    "Forecast": "jobbudget.domain.forecasting",
    "forecast_spend": "jobbudget.domain.forecasting",
    "BudgetReport": "jobbudget.domain.reporting",
    "CostDriver": "jobbudget.domain.reporting",
    "meter": "jobbudget.integrations.meter",
    "BudgetBlocked": "jobbudget.integrations.meter",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobbudget' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "AuditEntry",
    "AuthenticationError",
    "BenchmarkResult",
    "BudgetReport",
    "CalibrationReport",
    "CostDriver",
    "Forecast",
    "ModelCalibrator",
    "forecast_spend",
    "meter",
    "BudgetBlocked",
    "Admission",
    "Budget",
    "BudgetError",
    "BudgetPeriod",
    "BudgetService",
    "BudgetStatus",
    "Config",
    "ConflictError",
    "CostBreakdown",
    "CostCalculationEngine",
    "CostModel",
    "CostModelVersion",
    "DailyCost",
    "EnforcementAction",
    "EnforcementError",
    "EnforcementPolicy",
    "JobBudgetError",
    "JobCost",
    "JobMetrics",
    "NotFoundError",
    "NotificationChannel",
    "PermissionDeniedError",
    "StorageError",
    "StorageFullError",
    "StorageReadOnlyError",
    "StorageUnavailableError",
    "ValidationError",
    "default_cost_model",
    "seed_cost_model",
    "error_code",
    "is_permanent",
    "is_retryable",
    "production_cost_model",
    "staging_cost_model",
    "validate_budget",
]
