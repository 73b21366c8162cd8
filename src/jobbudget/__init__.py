"""jobbudget: exact job costs, budgets and graduated enforcement for multi-tenant queues."""

from __future__ import annotations

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
    staging_cost_model,
)
from .domain.enforcement import EnforcementAction
from .domain.errors import (
    BudgetError,
    ConflictError,
    EnforcementError,
    JobBudgetError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    ValidationError,
    error_code,
    is_permanent,
    is_retryable,
)
from .domain.periods import BudgetPeriod
from .domain.records import AuditEntry, CostModelVersion, DailyCost
from .service import BudgetService, BudgetStatus

__version__ = "0.1.0"

__all__ = [
    "AuditEntry",
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
    "StorageError",
    "StorageUnavailableError",
    "ValidationError",
    "default_cost_model",
    "error_code",
    "is_permanent",
    "is_retryable",
    "production_cost_model",
    "staging_cost_model",
    "validate_budget",
]
