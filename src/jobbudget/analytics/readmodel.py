"""What the analytics use cases need from the service, as Protocols.

The use cases in this package (forecasts, reports, dashboard views, forecast
accuracy snapshots, calibration) take a :class:`ReadModel`: the few public methods
they call and the store roles they read.  :class:`jobbudget.service.BudgetService`
satisfies it structurally (mypy checks each call ``service_queries.py`` makes, and
``tests/test_analytics_readmodel.py`` asserts it), but nothing here imports the
service: the analytics depend on the domain and the ports only, and the service
depends on them, never the other way round."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from ..ports import AuditLog, Ledger, ResourceTotals, SnapshotStore

if TYPE_CHECKING:
    from ..domain.adjustments import Adjustment
    from ..domain.alerts import Alert
    from ..domain.budget import Budget
    from ..domain.budget_status import BudgetStatus
    from ..domain.cost import CostModel
    from ..domain.forecasting import Forecast
    from ..domain.hierarchy import TenantTree
    from ..domain.records import CostModelVersion, DailyCost

__all__ = ["AnalyticsStore", "CostModelOwner", "ReadModel"]


class AnalyticsStore(Ledger, SnapshotStore, AuditLog, ResourceTotals, Protocol):
    """The store roles the analytics use: the ledger (budgets, period spend), the
    forecast snapshots they record and close, and the audit log calibration runs are
    kept in."""


class ReadModel(Protocol):
    """The read side of the service the analytics use cases run on."""

    @property
    def store(self) -> AnalyticsStore: ...

    def now(self) -> datetime:
        """The service clock's time (aware, UTC)."""
        ...

    def list_budgets(self, tenant_id: str | None = None, *, include_inactive: bool = False) -> list[Budget]: ...
    def get_budget_status(self, budget_id: str) -> BudgetStatus: ...
    def get_daily_costs(
        self,
        tenant_id: str | None = None,
        *,
        queue_name: str | None = None,
        start: date,
        end: date,
        exact_stats: bool = True,
    ) -> list[DailyCost]: ...
    def get_forecast(self, tenant_id: str, queue_name: str = "") -> Forecast: ...
    def list_alerts(
        self, tenant_id: str | None = None, *, active_only: bool = False, limit: int = 500, details: bool = True
    ) -> list[Alert]: ...
    def get_cost_model(self) -> CostModel: ...
    def get_cost_model_version(self) -> int: ...
    def tenant_tree(self) -> TenantTree: ...
    def list_adjustments(self, tenant_id: str | None = None, *, start: date, end: date) -> list[Adjustment]: ...


class CostModelOwner(ReadModel, Protocol):
    """A read model that can also put a new cost model in force (a calibration run
    with ``apply``)."""

    def update_cost_model(self, model: CostModel, *, actor: str = "system") -> CostModelVersion: ...


def subtree_days(
    source: ReadModel, members: frozenset[str], *, node: str, start: date, end: date, queue_name: str | None = None
) -> list[DailyCost]:
    """The daily aggregates of ``node``'s tenants (``members``, its subtree): one read
    of every tenant's days when the node has tenants below it, else the node's own."""
    if len(members) == 1:
        return source.get_daily_costs(node, queue_name=queue_name, start=start, end=end, exact_stats=False)
    rows = source.get_daily_costs(None, queue_name=queue_name, start=start, end=end, exact_stats=False)
    return [r for r in rows if r.tenant_id in members]
