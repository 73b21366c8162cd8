"""The outbound rule in the service, on every store back-end: channels whose target is a
refused literal address are refused when a budget is stored (naming
``notifications[i].target``), channels stored before the rule stay until changed, and
what a tenant is shown of deliveries (``list_alerts(details=False)``): its own channels
only, failures without the reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal

import pytest

from jobbudget import Budget, BudgetPeriod, JobMetrics, NotificationChannel, ValidationError
from jobbudget.domain.alerts import HIDDEN_DELIVERY_ERROR
from jobbudget.service import BudgetService
from receivers import Receiver, Reply, free_port, http_receivers

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


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    with http_receivers() as start:
        yield start(default=Reply(404, echo=True)), start()


def test_a_tenant_sees_its_own_deliveries_without_the_reasons(
    service_factory: ServiceFactory, receivers: tuple[Receiver, Receiver]
) -> None:
    tenants, operators = receivers
    dead_smtp = free_port()
    service = service_factory(
        **NO_BASE,
        smtp_host="127.0.0.1",
        smtp_port=dead_smtp,
        notification_channels=[{"type": "webhook", "target": operators.url("/ops/hook"), "events": ["warning"]}],
    )
    mail = NotificationChannel(type="email", target="ops@acme.example", events=("warning",))
    hook = NotificationChannel(type="webhook", target=tenants.url("/internal/admin"), events=("warning",))
    service.create_budget(replace(budget(), notifications=(hook, mail)))
    zero = Decimal(0)
    service.process_job_cost(JobMetrics(job_id="j", tenant_id="acme", queue_name="q", cpu_time=Decimal(800_000),
                                        memory_mb_seconds=zero, payload_bytes=zero, redis_ops=zero,
                                        network_bytes=zero))  # fmt: skip
    service.dispatch_notifications(timeout=20)
    assert len(operators.requests) == 1 and len(tenants.requests) == 1

    [full] = service.list_alerts()
    errors = " ".join(d.last_error or "" for d in full.deliveries)
    assert len(full.deliveries) == 3  # the budget's two channels and the operator's
    assert "HTTP 404" in errors and f"127.0.0.1:{dead_smtp}" in errors

    [shown] = service.list_alerts("acme", details=False)
    assert sorted(d.channel_type for d in shown.deliveries) == ["email", "webhook"]  # not the operator's
    assert {d.last_error for d in shown.deliveries} == {HIDDEN_DELIVERY_ERROR}
    text = " ".join(f"{d.status} {d.last_error}" for d in shown.deliveries)  # its own targets show their ports
    for leak in (str(dead_smtp), "404", "SMTP", "refused", "/ops"):
        assert leak not in text, leak
    assert not [d for d in shown.deliveries if f":{operators.port}/" in d.target]
