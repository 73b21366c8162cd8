"""The one data-access interface of the terminal UI, with its two implementations:
:class:`LocalSource` calls a :class:`~jobbudget.service.BudgetService` in this process
(the local database), :class:`RemoteSource` calls a jobbudget server over HTTP.  Both
return the same typed objects, so every screen works on either.  Every call may block
(database or network): the UI only makes them from worker threads.

A :class:`LocalSource` given ``at`` (``jobbudget tui --at``) reads as of that moment;
what it writes happens now, stamped with the service's own clock."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from ..domain.adjustments import Adjustment
from ..domain.alerts import Alert
from ..domain.budget import Budget, EnforcementPolicy, NotificationChannel
from ..domain.codec import from_jsonable, to_jsonable
from ..domain.dashboard import BudgetTrends, Dashboard
from ..domain.errors import (
    AuthenticationError,
    ConflictError,
    JobBudgetError,
    NotFoundError,
    PermissionDeniedError,
    StorageUnavailableError,
    ValidationError,
)
from ..domain.hierarchy import TreeNode
from ..domain.periods import BudgetPeriod

if TYPE_CHECKING:
    from ..service import BudgetService

__all__ = ["BudgetDraft", "DataSource", "LocalSource", "PlatformView", "RemoteSource"]


@dataclass(frozen=True, slots=True)
class PlatformView:
    """What the Platform tab shows: the organisation tree and the recent refunds and
    corrections (of the source's tenant scope)."""

    tree: tuple[TreeNode, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()


@dataclass(frozen=True, slots=True)
class BudgetDraft:
    """What the Controls form edits.  ``notifications`` None keeps the stored
    channels (whose secrets the form never sees)."""

    tenant_id: str
    queue_name: str
    amount: Decimal
    period: BudgetPeriod
    currency: str = "USD"
    warning_threshold: Decimal = Decimal("0.75")
    throttle_threshold: Decimal = Decimal("0.90")
    block_threshold: Decimal = Decimal("1.00")
    enforcement_policy: EnforcementPolicy = field(default_factory=EnforcementPolicy)
    notifications: tuple[NotificationChannel, ...] | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def to_budget(self) -> Budget:
        return Budget(
            tenant_id=self.tenant_id,
            queue_name=self.queue_name,
            amount=self.amount,
            period=self.period,
            currency=self.currency,
            warning_threshold=self.warning_threshold,
            throttle_threshold=self.throttle_threshold,
            block_threshold=self.block_threshold,
            enforcement_policy=self.enforcement_policy,
            notifications=self.notifications or (),
            labels=dict(self.labels),
        )

    def applied_to(self, old: Budget) -> Budget:
        """``old`` with this draft's values (tenant and queue cannot change)."""
        return replace(
            old,
            amount=self.amount,
            period=self.period,
            currency=self.currency,
            warning_threshold=self.warning_threshold,
            throttle_threshold=self.throttle_threshold,
            block_threshold=self.block_threshold,
            enforcement_policy=self.enforcement_policy,
            notifications=old.notifications if self.notifications is None else self.notifications,
            labels=dict(self.labels),
        )


class DataSource(Protocol):
    """What the terminal UI reads and changes.  Budgets come back redacted."""

    @property
    def label(self) -> str: ...
    def dashboard(self, tenant_id: str | None = None) -> Dashboard: ...
    def trends(self, budget_id: str, *, days: int = 30) -> BudgetTrends: ...
    def alerts(self, *, active_only: bool = False, limit: int = 200) -> list[Alert]: ...
    def acknowledge(self, alert_id: str, *, by: str) -> None: ...
    def get_budget(self, budget_id: str) -> Budget: ...
    def validate(self, draft: BudgetDraft, *, budget_id: str | None = None) -> None: ...
    def create_budget(self, draft: BudgetDraft) -> Budget: ...
    def update_budget(self, budget_id: str, draft: BudgetDraft) -> Budget: ...
    def deactivate_budget(self, budget_id: str) -> Budget: ...
    def test_channel(self, budget_id: str, index: int) -> None: ...
    def platform(self, *, days: int = 30) -> PlatformView: ...
    def refund(self, tenant_id: str, job_id: str, *, reason: str) -> Adjustment | None: ...
    def adjust(self, tenant_id: str, amount: Decimal, *, reason: str, queue_name: str = "") -> Adjustment: ...
    def close(self) -> None: ...


class LocalSource:
    """The service in this process (``owns`` closes it with the source).  With
    ``resync`` (the default) every dashboard read first reloads the spend of every
    budget from the ledger, so jobs written by other processes (workers, an API
    server) on the same database show up at the next refresh.  With ``at`` (aware)
    the dashboard, trends and alerts are read as of that moment
    (:meth:`BudgetService.as_of`); writes still happen now."""

    def __init__(
        self,
        service: BudgetService,
        *,
        owns: bool = False,
        actor: str = "tui",
        resync: bool = True,
        at: datetime | None = None,
    ) -> None:
        self.service = service
        self._owns = owns
        self._actor = actor
        self._resync = resync
        self._at = at

    @property
    def label(self) -> str:
        url = _redacted_url(self.service.config.database_url)
        return url if self._at is None else f"{url} as of {self._at:%Y-%m-%d %H:%M:%S %Z}"

    def _shown(self) -> contextlib.AbstractContextManager[None]:
        """Around a read: as of ``at``, when given."""
        return contextlib.nullcontext() if self._at is None else self.service.as_of(self._at)

    def dashboard(self, tenant_id: str | None = None) -> Dashboard:
        # shared spend is fresh already; reads as of ``at`` come from the ledger
        if self._resync and not self.service.shares_state and self._at is None:
            self.service.resync()
        with self._shown():
            return self.service.dashboard(tenant_id)

    def trends(self, budget_id: str, *, days: int = 30) -> BudgetTrends:
        with self._shown():
            return self.service.budget_trends(budget_id, days=days)

    def alerts(self, *, active_only: bool = False, limit: int = 200) -> list[Alert]:
        with self._shown():
            return self.service.list_alerts(active_only=active_only, limit=limit)

    def acknowledge(self, alert_id: str, *, by: str) -> None:
        self.service.acknowledge_alert(alert_id, by)

    def get_budget(self, budget_id: str) -> Budget:
        return self.service.get_budget(budget_id).redacted()

    def validate(self, draft: BudgetDraft, *, budget_id: str | None = None) -> None:
        stored = None if budget_id is None else self.service.get_budget(budget_id)
        budget = draft.to_budget() if stored is None else draft.applied_to(stored)
        self.service.validate_budget(budget, stored=stored)

    def create_budget(self, draft: BudgetDraft) -> Budget:
        return self.service.create_budget(draft.to_budget(), actor=self._actor).redacted()

    def update_budget(self, budget_id: str, draft: BudgetDraft) -> Budget:
        old = self.service.get_budget(budget_id)
        return self.service.update_budget(draft.applied_to(old), actor=self._actor).redacted()

    def deactivate_budget(self, budget_id: str) -> Budget:
        return self.service.deactivate_budget(budget_id, actor=self._actor).redacted()

    def test_channel(self, budget_id: str, index: int) -> None:
        self.service.send_budget_test_notification(budget_id, index)

    def platform(self, *, days: int = 30) -> PlatformView:
        today = self.service.now().date()
        tree = self.service.tenant_tree()
        found = self.service.list_adjustments(start=today - timedelta(days=days), end=today)
        return PlatformView(
            tree=tuple(TreeNode(n, p) for n, p in sorted(tree.parents.items())), adjustments=tuple(reversed(found))
        )

    def refund(self, tenant_id: str, job_id: str, *, reason: str) -> Adjustment | None:
        return self.service.refund_job(tenant_id, job_id, reason=reason, actor=self._actor)

    def adjust(self, tenant_id: str, amount: Decimal, *, reason: str, queue_name: str = "") -> Adjustment:
        return self.service.adjust_spend(tenant_id, amount, reason=reason, actor=self._actor, queue_name=queue_name)

    def close(self) -> None:
        if self._owns:
            self.service.close()


class RemoteSource:
    """A jobbudget server's ``/v1`` API, with an API key."""

    def __init__(
        self, url: str, *, api_key: str, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self._url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    @property
    def label(self) -> str:
        return self._url

    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise StorageUnavailableError(f"cannot reach {self._url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise _error_of(response)
        return response.json() if response.content else None

    def dashboard(self, tenant_id: str | None = None) -> Dashboard:
        params = {"tenant": tenant_id} if tenant_id is not None else None
        result: Dashboard = from_jsonable(Dashboard, self._call("GET", "/v1/dashboard", params=params))
        return result

    def trends(self, budget_id: str, *, days: int = 30) -> BudgetTrends:
        data = self._call("GET", f"/v1/budgets/{budget_id}/trends", params={"days": days})
        result: BudgetTrends = from_jsonable(BudgetTrends, data)
        return result

    def alerts(self, *, active_only: bool = False, limit: int = 200) -> list[Alert]:
        data = self._call("GET", "/v1/alerts", params={"active_only": active_only, "limit": limit})
        return [from_jsonable(Alert, item) for item in data]

    def acknowledge(self, alert_id: str, *, by: str) -> None:
        self._call("POST", f"/v1/alerts/{alert_id}/ack", json={"by": by})

    def get_budget(self, budget_id: str) -> Budget:
        result: Budget = from_jsonable(Budget, self._call("GET", f"/v1/budgets/{budget_id}"))
        return result

    def validate(self, draft: BudgetDraft, *, budget_id: str | None = None) -> None:
        # the server validates on write; checking here the same way spares a round trip
        from ..domain.budget import validate_budget

        validate_budget(draft.to_budget())

    def create_budget(self, draft: BudgetDraft) -> Budget:
        body = to_jsonable(draft.to_budget())
        for name in ("id", "created_at", "updated_at", "created_by", "owner", "active", "tags"):
            body.pop(name, None)
        result: Budget = from_jsonable(Budget, self._call("POST", "/v1/budgets", json=body))
        return result

    def update_budget(self, budget_id: str, draft: BudgetDraft) -> Budget:
        body = to_jsonable(draft)
        body.pop("tenant_id")
        body.pop("queue_name")
        if draft.notifications is None:
            body.pop("notifications")
        result: Budget = from_jsonable(Budget, self._call("PATCH", f"/v1/budgets/{budget_id}", json=body))
        return result

    def deactivate_budget(self, budget_id: str) -> Budget:
        result: Budget = from_jsonable(Budget, self._call("DELETE", f"/v1/budgets/{budget_id}"))
        return result

    def test_channel(self, budget_id: str, index: int) -> None:
        self._call("POST", f"/v1/budgets/{budget_id}/channels/{index}/test")

    def platform(self, *, days: int = 30) -> PlatformView:
        nodes = self._call("GET", "/v1/tree")["nodes"]
        found = [_adjustment_of(a) for a in self._call("GET", "/v1/adjustments")]  # the server's last 30 days
        return PlatformView(
            tree=tuple(TreeNode(n["node"], n["parent"]) for n in nodes), adjustments=tuple(reversed(found))
        )

    def refund(self, tenant_id: str, job_id: str, *, reason: str) -> Adjustment | None:
        try:
            done = self._call("POST", f"/v1/jobs/{tenant_id}/{job_id}/refund", json={"reason": reason})
        except ConflictError:
            return None  # refunded before
        return _adjustment_of(done)

    def adjust(self, tenant_id: str, amount: Decimal, *, reason: str, queue_name: str = "") -> Adjustment:
        body = {"tenant_id": tenant_id, "amount": str(amount), "reason": reason, "queue_name": queue_name}
        return _adjustment_of(self._call("POST", "/v1/adjustments", json=body))

    def close(self) -> None:
        self._client.close()


def _adjustment_of(data: dict[str, Any]) -> Adjustment:
    """An adjustment as the API shows it (the periods it counted toward are not shown)."""
    return Adjustment(
        id=data["id"], kind=data["kind"], tenant_id=data["tenant_id"], queue_name=data["queue_name"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]), amount=Decimal(data["amount"]),
        reason=data["reason"], actor=data["actor"], at=datetime.fromisoformat(data["at"]), job_id=data["job_id"],
    )  # fmt: skip


def _error_of(response: httpx.Response) -> JobBudgetError:
    """The server's JSON error as the domain error it came from."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = str(error.get("message") or response.reason_phrase)
    status = response.status_code
    if status in (400, 413, 422):
        field = str(error.get("field") or "request")
        reason = message.split(": ", 1)[1] if message.startswith(f"{field}: ") else message
        return ValidationError(field, None, reason)
    if status == 401:
        return AuthenticationError(message)
    if status == 403:
        return PermissionDeniedError(message)
    if status == 404:
        return NotFoundError("resource", message)
    if status == 409:
        return ConflictError(message)
    if status == 502 and error.get("code") == "DELIVERY_FAILED":
        from ..notify.base import DeliveryError

        return DeliveryError(message, retryable=False)
    if status == 503:
        return StorageUnavailableError(message)
    return JobBudgetError(f"server answered {status}: {message}")


def _redacted_url(url: str) -> str:
    """A database URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
