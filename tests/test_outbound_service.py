"""The outbound rule in the service, on every store back-end: channels whose target is a
refused literal address are refused when a budget is stored (naming
``notifications[i].target``), and channels stored before the rule stay until changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest

from jobbudget import Budget, BudgetPeriod, NotificationChannel, ValidationError
from jobbudget.service import BudgetService

ServiceFactory = Callable[..., BudgetService]
NO_BASE = {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}


def channels(*targets: str) -> tuple[NotificationChannel, ...]:
    return tuple(NotificationChannel(type="webhook", target=t) for t in targets)


def budget(*targets: str) -> Budget:
    return Budget(
        tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly"), notifications=channels(*targets)
    )


@pytest.fixture
def strict(service_factory: ServiceFactory, monkeypatch: pytest.MonkeyPatch) -> BudgetService:
    """A service with the default policy (the tests' allow-list removed)."""
    monkeypatch.delenv("JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS")
    return service_factory(**NO_BASE)


def test_a_refused_literal_target_is_refused_when_stored(strict: BudgetService) -> None:
    with pytest.raises(ValidationError) as refused:
        strict.create_budget(budget("https://example.com/ok", "http://0x7f.1:8080/admin/s3cr3t"))
    assert refused.value.field == "notifications[1].target"
    assert "0x7f.1 (127.0.0.1) is a loopback address" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)
    assert strict.list_budgets() == []
    stored = strict.create_budget(budget("https://example.com/ok"))
    with pytest.raises(ValidationError) as refused:
        strict.update_budget(replace(stored, notifications=channels("https://example.com/ok", "http://[::]:22/")))
    assert refused.value.field == "notifications[1].target"
    with pytest.raises(ValidationError) as refused:
        strict.validate_budget(budget("http://169.254.169.254/latest/meta-data/"))
    assert "link-local" in str(refused.value)


def test_channels_stored_before_the_rule_are_kept_until_changed(
    service_factory: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = service_factory(**NO_BASE).create_budget(budget("http://127.0.0.1:9/legacy"))  # allowed by the tests
    monkeypatch.delenv("JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS")
    strict = service_factory(**NO_BASE)
    raised = strict.update_budget(replace(old, amount=Decimal(200)))  # the channel is kept as it is
    assert raised.notifications == old.notifications
    strict.deactivate_budget(str(old.id))
    with pytest.raises(ValidationError) as refused:  # a budget's test message: refused before sending
        strict.send_budget_test_notification(str(old.id), 0)
    assert refused.value.field == "notifications[0].target"
