"""RemoteSource against a real jobbudget server (uvicorn on 127.0.0.1, in a thread)
returns the same objects as LocalSource over the same service, writes through the API
(keeping stored secrets), and turns the server's errors back into the domain's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import uvicorn

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics, NotificationChannel
from jobbudget.api.app import create_app
from jobbudget.config import Config
from jobbudget.domain.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    StorageUnavailableError,
    ValidationError,
)
from jobbudget.service import BudgetService
from jobbudget.storage.sql.store import SqlStore
from jobbudget.tui.source import BudgetDraft, LocalSource, RemoteSource
from receivers import Receiver, free_port, http_receivers

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SECRET = "k3y-for-signing"


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[BudgetService]:
    store = SqlStore(f"sqlite:///{tmp_path / 'remote.db'}")
    store.migrate()
    made = BudgetService(
        Config(cost_model={"cpu_time_weight": "0.0001", "base_job_weight": "0"}), clock=clock, store=store
    )
    yield made
    made.close()


@pytest.fixture
def server(service: BudgetService) -> Iterator[str]:
    """The API over ``service`` on a free port of 127.0.0.1; yields its URL."""
    port = free_port()
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=15)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receivers() as start:
        yield start()


@pytest.fixture
def remote(service: BudgetService, server: str) -> Iterator[RemoteSource]:
    _, key = service.create_api_key(role="admin", name="tui")
    source = RemoteSource(server, api_key=key, timeout=10)
    yield source
    source.close()


def job(job_id: str, cost: str, *, tenant: str = "acme", queue: str = "q1", ts: datetime | None = None) -> JobMetrics:
    zero = Decimal(0)
    return JobMetrics(job_id=job_id, tenant_id=tenant, queue_name=queue, cpu_time=Decimal(cost) * 10_000,
                      memory_mb_seconds=zero, payload_bytes=zero, redis_ops=zero, network_bytes=zero,
                      timestamp=ts)  # fmt: skip


def hook(url: str) -> NotificationChannel:
    return NotificationChannel(type="webhook", target=url, metadata={"secret": SECRET, "team": "ops"})


def populate(service: BudgetService, url: str = "http://127.0.0.1:9/in/token") -> dict[str, str]:
    acme = service.create_budget(
        Budget(tenant_id="acme", amount=Decimal("100"), period=BudgetPeriod("monthly"), notifications=(hook(url),))
    )
    queue = service.create_budget(
        Budget(tenant_id="acme", queue_name="q2", amount=Decimal("30.5"), period=BudgetPeriod("weekly"))
    )
    globex = service.create_budget(Budget(tenant_id="globex", amount=Decimal("50"), period=BudgetPeriod("monthly")))
    start = datetime(2024, 1, 1, 6, tzinfo=UTC)
    service.process_job_costs(
        [job(f"a{i}", "6.123456789", ts=start + timedelta(days=i, hours=i % 5)) for i in range(14)]
        + [job("q", "31", queue="q2", ts=start + timedelta(days=14)), job("g", "2", tenant="globex", ts=start)]
    )
    assert acme.id and queue.id and globex.id
    return {"acme": acme.id, "queue": queue.id, "globex": globex.id}


def test_reads_equal_the_local_source(service: BudgetService, remote: RemoteSource) -> None:
    ids = populate(service)
    local = LocalSource(service)
    assert service.list_alerts(), "the set-up should have fired alerts"
    assert remote.dashboard() == local.dashboard()
    assert remote.dashboard("acme") == local.dashboard("acme")
    for budget_id in ids.values():
        assert remote.get_budget(budget_id) == local.get_budget(budget_id)
        assert remote.trends(budget_id) == local.trends(budget_id)
        assert remote.trends(budget_id, days=7) == local.trends(budget_id, days=7)
    assert local.trends(ids["acme"]).forecast is not None  # the forecast survives the trip too
    assert remote.alerts() == local.alerts()
    assert remote.alerts(active_only=True, limit=1) == local.alerts(active_only=True, limit=1)
    assert SECRET not in repr(remote.get_budget(ids["acme"])) and SECRET not in repr(remote.dashboard())
    assert "/in/token" not in repr(remote.alerts())


def test_acknowledge_and_test_channel_through_the_server(
    service: BudgetService, remote: RemoteSource, receiver: Receiver
) -> None:
    ids = populate(service, receiver.url("/in/token"))
    alert = remote.alerts(active_only=True)[0]
    remote.acknowledge(alert.event.id, by="alice")
    (acked,) = [a for a in service.list_alerts() if a.event.id == alert.event.id]
    assert acked.acknowledged_by == "alice"
    assert alert.event.id not in {a.event.id for a in remote.alerts(active_only=True)}
    remote.test_channel(ids["acme"], 0)
    assert receiver.wait_for(1, timeout=10)
    assert [r.path for r in receiver.requests] == ["/in/token"]  # sent with the stored target
    with pytest.raises(ValidationError) as bad:
        remote.test_channel(ids["acme"], 5)
    assert bad.value.field == "index"


def test_writes_go_through_the_api_and_keep_stored_secrets(
    service: BudgetService, remote: RemoteSource, receiver: Receiver
) -> None:
    draft = BudgetDraft(
        tenant_id="initech",
        queue_name="reports",
        amount=Decimal("250.125"),
        period=BudgetPeriod("weekly"),
        warning_threshold=Decimal("0.5"),
        notifications=(hook(receiver.url("/in/token")),),
    )
    created = remote.create_budget(draft)
    assert created.id is not None
    stored = service.get_budget(created.id)
    assert created == stored.redacted() == LocalSource(service).get_budget(created.id)
    assert (stored.amount, stored.warning_threshold, stored.queue_name) == (
        Decimal("250.125"),
        Decimal("0.5"),
        "reports",
    )
    assert stored.notifications[0].metadata["secret"] == SECRET  # the server keeps it
    assert created.notifications[0].metadata["secret"] == "***"  # and never sends it back

    changed = remote.update_budget(created.id, replace(draft, amount=Decimal("300"), notifications=None))
    after = service.get_budget(created.id)
    assert after.amount == changed.amount == Decimal("300")
    assert after.notifications == stored.notifications  # the secrets survived an edit that never saw them
    assert changed == after.redacted()

    quiet = remote.update_budget(created.id, replace(draft, notifications=()))
    assert quiet.notifications == () and service.get_budget(created.id).notifications == ()

    gone = remote.deactivate_budget(created.id)
    assert gone.active is False and service.get_budget(created.id).active is False
    remote.validate(draft)  # validates locally, without a round trip


def test_errors_come_back_typed(service: BudgetService, server: str, remote: RemoteSource) -> None:
    ids = populate(service)
    draft = BudgetDraft(tenant_id="acme", queue_name="new", amount=Decimal("-5"), period=BudgetPeriod("monthly"))
    with pytest.raises(ValidationError) as bad:
        remote.create_budget(draft)
    assert bad.value.field == "amount"
    with pytest.raises(ValidationError) as bad_days:
        remote.trends(ids["acme"], days=0)
    assert bad_days.value.field == "days"
    with pytest.raises(NotFoundError):
        remote.get_budget("no-such-budget")
    with pytest.raises(NotFoundError):
        remote.update_budget("no-such-budget", replace(draft, amount=Decimal(1)))
    with pytest.raises(ValidationError) as bad_tenant:
        remote.dashboard("x" * 201)
    assert bad_tenant.value.field == "tenant"
    bad_key = RemoteSource(server, api_key="jb_not-a-real-key")
    try:
        with pytest.raises(AuthenticationError):
            bad_key.dashboard()
    finally:
        bad_key.close()
    _, reporter_key = service.create_api_key(role="reporter", name="reports")
    reporter = RemoteSource(server, api_key=reporter_key)
    try:
        assert reporter.dashboard() == LocalSource(service).dashboard()
        with pytest.raises(PermissionDeniedError):
            reporter.deactivate_budget(ids["acme"])
    finally:
        reporter.close()
    _, acme_key = service.create_api_key(role="tenant", tenant_id="acme", name="acme")
    tenant = RemoteSource(server, api_key=acme_key)
    try:
        with pytest.raises(NotFoundError):
            tenant.dashboard("globex")
        with pytest.raises(NotFoundError):
            tenant.get_budget(ids["globex"])
    finally:
        tenant.close()


def test_a_server_that_is_down_is_storage_unavailable() -> None:
    down = RemoteSource(f"http://127.0.0.1:{free_port()}", api_key="jb_whatever", timeout=2)
    try:
        with pytest.raises(StorageUnavailableError) as err:
            down.dashboard()
        assert "cannot reach" in str(err.value)
        with pytest.raises(StorageUnavailableError):
            down.acknowledge("some-id", by="me")
    finally:
        down.close()


def test_the_platform_tab_over_http_equals_local(service: BudgetService, remote: RemoteSource) -> None:
    service.set_parent("acme", "research")
    service.process_job_costs([job("p1", "3"), job("p2", "1")])
    refund = remote.refund("acme", "p1", reason="node failure")
    assert refund is not None and refund.amount == Decimal(-3) and refund.actor == "apikey:tui"
    assert remote.refund("acme", "p1", reason="again") is None  # 409: refunded before
    credit = remote.adjust("acme", Decimal("-0.5"), reason="SLA credit")
    assert credit.kind == "credit"
    with pytest.raises(ValidationError) as err:
        remote.adjust("acme", Decimal(0), reason="x")
    assert err.value.field == "amount"
    over_http, local = remote.platform(), LocalSource(service).platform()
    assert over_http.tree == local.tree
    assert [(a.id, a.amount, a.reason) for a in over_http.adjustments] == [
        (a.id, a.amount, a.reason) for a in local.adjustments
    ]
