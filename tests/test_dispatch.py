"""Alerts delivered for real, through the service and its outbox dispatcher, to
receivers on 127.0.0.1 (HTTP servers, an aiosmtpd SMTP server), on every back-end.

The FakeClock drives retries: a test advances it to make a retry due instead of
sleeping, so backoff, ``Retry-After``, rate-limit hours and lease expiry cost nothing."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics, NotFoundError, NotificationChannel
from jobbudget.config import Config
from jobbudget.domain.alerts import Alert, DeliveryState
from jobbudget.ports import Store
from jobbudget.service import BudgetService
from receivers import Mailbox, Receiver, Reply, free_port, http_receivers, smtp_server

ServiceFactory = Callable[..., BudgetService]
Start = Callable[..., Receiver]
NO_BASE: dict[str, Any] = {
    "cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}
}  # a job costs exactly cpu_time × 0.0001
FIELDS = {"schema", "id", "type", "tenant_id", "queue_name", "budget_id", "current_spend", "budget_amount",
          "utilization", "currency", "forecast_spend", "period_start", "period_end", "occurred_at", "message"}  # fmt: skip


@pytest.fixture
def http() -> Iterator[Start]:
    with http_receivers() as start:
        yield start


@pytest.fixture
def service(service_factory: ServiceFactory) -> BudgetService:
    return service_factory(**NO_BASE)


def job(job_id: str, cost: str, *, tenant: str = "acme") -> JobMetrics:
    zero = Decimal(0)
    return JobMetrics(job_id=job_id, tenant_id=tenant, queue_name="q1", cpu_time=Decimal(cost) * 10_000,
                      memory_mb_seconds=zero, payload_bytes=zero, redis_ops=zero, network_bytes=zero)  # fmt: skip


def hook(url: str, **metadata: str) -> NotificationChannel:
    return NotificationChannel(type="webhook", target=url, metadata=metadata)


def budget(*channels: NotificationChannel, tenant: str = "acme", amount: str = "100") -> Budget:
    return Budget(
        tenant_id=tenant, amount=Decimal(amount), period=BudgetPeriod("monthly"), notifications=tuple(channels)
    )


def only_delivery(service: BudgetService) -> tuple[Alert, DeliveryState]:
    (alert,) = service.list_alerts()
    (delivery,) = alert.deliveries
    return alert, delivery


def deliveries(service: BudgetService) -> dict[str, DeliveryState]:
    """Event id -> its one delivery."""
    return {alert.event.id: delivery for alert in service.list_alerts() for delivery in alert.deliveries}


def dispatch(service: BudgetService) -> Any:
    return service.dispatch_notifications(timeout=10)


# -- delivered once, with the documented body ------------------------------------------
def test_a_webhook_is_delivered_once_with_the_event_id_and_the_documented_body(
    service: BudgetService, http: Start, clock: FakeClock
) -> None:
    receiver = http()
    created = service.create_budget(budget(hook(receiver.url("/in/alerts"), secret="k3y-for-signing")))
    service.process_job_cost(job("a", "80"))
    result = dispatch(service)
    assert (result.sent, result.retrying, result.failed) == (1, 0, 0)
    alert, delivery = only_delivery(service)
    (got,) = receiver.requests
    assert got.path == "/in/alerts" and got.event_id == alert.event.id
    assert got.headers["content-type"] == "application/json" and "x-jobbudget-signature" in got.headers
    body = got.json()
    assert set(body) == FIELDS and body["schema"] == "jobbudget.alert/v1"
    assert (body["id"], body["type"], body["budget_id"]) == (alert.event.id, "warning", created.id)
    assert (body["tenant_id"], body["queue_name"], body["currency"]) == ("acme", "", "USD")
    assert Decimal(body["current_spend"]) == 80 and Decimal(body["budget_amount"]) == 100
    assert Decimal(body["utilization"]) == Decimal("0.8") and body["forecast_spend"] is None
    assert (body["period_start"], body["period_end"]) == ("2024-01-01", "2024-01-31")
    assert datetime.fromisoformat(body["occurred_at"]) == clock.now and body["message"] == alert.event.message
    assert (delivery.status, delivery.attempts, delivery.sent_at, delivery.last_error) == ("sent", 1, clock.now, None)
    clock.advance(hours=2)
    assert not dispatch(service).worked and len(receiver.requests) == 1  # sent is sent


def test_an_escalation_delivers_warning_throttle_and_block(service: BudgetService, http: Start) -> None:
    receiver = http()
    service.create_budget(budget(hook(receiver.url())))
    service.process_job_cost(job("a", "76"))
    assert dispatch(service).sent == 1
    service.process_job_cost(job("b", "15"))  # 91 %
    service.process_job_cost(job("c", "9"))  # 100 %
    assert dispatch(service).sent == 2
    assert [b["type"] for b in receiver.bodies()] == ["warning", "throttle", "block"]
    ids = {a.event.id for a in service.list_alerts()}
    assert receiver.event_ids() == dict.fromkeys(ids, 1)


# -- retries ---------------------------------------------------------------------------
def test_a_5xx_is_retried_after_the_backoff_and_delivered_on_the_third_attempt(
    service: BudgetService, http: Start, clock: FakeClock
) -> None:
    receiver = http().then(Reply(500), Reply(503))
    service.create_budget(budget(hook(receiver.url())))
    service.process_job_cost(job("a", "80"))
    assert dispatch(service).retrying == 1
    _, d = only_delivery(service)
    assert (d.status, d.attempts) == ("pending", 1) and "answered HTTP 500" in str(d.last_error)
    assert d.next_attempt_at is not None
    assert timedelta(seconds=0.5) <= d.next_attempt_at - clock.now <= timedelta(seconds=1)  # 1 s, equal jitter
    assert not dispatch(service).worked and len(receiver.requests) == 1  # not due yet
    clock.advance(seconds=1)
    assert dispatch(service).retrying == 1
    _, d = only_delivery(service)
    assert (d.status, d.attempts) == ("pending", 2) and "answered HTTP 503" in str(d.last_error)
    assert d.next_attempt_at is not None
    assert timedelta(seconds=1) <= d.next_attempt_at - clock.now <= timedelta(seconds=2)  # doubled
    clock.advance(seconds=2)
    assert dispatch(service).sent == 1
    alert, d = only_delivery(service)
    assert (d.status, d.attempts, d.last_error, d.sent_at) == ("sent", 3, None, clock.now)
    assert receiver.event_ids() == {alert.event.id: 3}  # the same event id on every attempt


def test_429_with_retry_after_waits_at_least_that_long(service: BudgetService, http: Start, clock: FakeClock) -> None:
    receiver = http().then(Reply(429, {"Retry-After": "120"}))
    service.create_budget(budget(hook(receiver.url())))
    service.process_job_cost(job("a", "80"))
    assert dispatch(service).retrying == 1
    _, d = only_delivery(service)
    assert d.next_attempt_at is not None and d.next_attempt_at - clock.now >= timedelta(seconds=120)
    assert "HTTP 429, retry after 120s" in str(d.last_error)
    clock.advance(seconds=119)
    assert not dispatch(service).worked and len(receiver.requests) == 1
    clock.advance(seconds=2)
    assert dispatch(service).sent == 1 and len(receiver.requests) == 2


def test_a_4xx_is_a_dead_letter_that_resend_delivers_once_the_receiver_is_fixed(
    service: BudgetService, http: Start, clock: FakeClock
) -> None:
    receiver = http(default=Reply(400))
    service.create_budget(budget(hook(receiver.url())))
    service.process_job_cost(job("a", "80"))
    assert dispatch(service).failed == 1
    alert, d = only_delivery(service)
    assert (d.status, d.attempts) == ("failed", 1) and "answered HTTP 400" in str(d.last_error)
    clock.advance(hours=3)
    assert not dispatch(service).worked and len(receiver.requests) == 1  # no retry of a permanent failure
    receiver.default = Reply(200)
    service.resend_delivery(d.id)
    assert dispatch(service).sent == 1
    _, d = only_delivery(service)
    assert (d.status, d.attempts, d.last_error) == ("sent", 1, None)
    assert receiver.event_ids() == {alert.event.id: 2}
    with pytest.raises(NotFoundError):
        service.resend_delivery(d.id + 1000)


def test_a_receiver_slower_than_the_channel_timeout_is_retried(
    service: BudgetService, http: Start, clock: FakeClock
) -> None:
    receiver = http().then(Reply(delay=2.0))
    service.create_budget(budget(hook(receiver.url(), timeout="200ms")))
    service.process_job_cost(job("a", "80"))
    started = time.monotonic()
    assert dispatch(service).retrying == 1
    assert time.monotonic() - started < 1.5  # gave up after the channel's timeout, not the receiver's delay
    _, d = only_delivery(service)
    assert (d.status, d.attempts) == ("pending", 1) and "did not answer within 0.2s" in str(d.last_error)
    clock.advance(seconds=1)
    assert dispatch(service).sent == 1
    assert only_delivery(service)[1].attempts == 2


def test_retry_count_is_respected_then_the_delivery_fails(
    service: BudgetService, http: Start, clock: FakeClock
) -> None:
    receiver = http(default=Reply(503))
    service.create_budget(budget(hook(receiver.url(), retry_count="2")))
    service.process_job_cost(job("a", "80"))
    for attempt in (1, 2):
        assert dispatch(service).retrying == 1
        assert only_delivery(service)[1].attempts == attempt
        clock.advance(seconds=10)
    assert dispatch(service).failed == 1  # the first try and two retries
    _, d = only_delivery(service)
    assert (d.status, d.attempts) == ("failed", 3) and "HTTP 503" in str(d.last_error)
    clock.advance(days=1)
    assert not dispatch(service).worked and len(receiver.requests) == 3


def test_a_receiver_down_for_a_while_gets_every_event_exactly_once(
    service: BudgetService, http: Start, clock: FakeClock
) -> None:
    port = free_port()  # nothing listens: connections are refused
    channel = hook(f"http://127.0.0.1:{port}/hook", timeout="2s")
    for tenant in ("t1", "t2", "t3"):
        service.create_budget(budget(channel, tenant=tenant))
        service.process_job_cost(job(f"{tenant}-a", "95", tenant=tenant))  # warning and throttle
    for attempt in range(1, 5):
        assert dispatch(service).retrying == 6
        states = deliveries(service).values()
        assert all(d.status == "pending" and d.attempts == attempt for d in states)
        assert all("connection failed" in str(d.last_error) for d in states)
        clock.advance(seconds=30)
    receiver = http(port=port)  # back up
    assert dispatch(service).sent == 6
    clock.advance(hours=1)
    assert not dispatch(service).worked
    assert receiver.event_ids() == dict.fromkeys(deliveries(service), 1)
    assert all(d.status == "sent" and d.attempts == 5 for d in deliveries(service).values())


# -- rate limit and digests ------------------------------------------------------------
def test_over_the_rate_limit_alerts_are_held_and_sent_as_one_digest_an_hour_later(
    service: BudgetService, http: Start, clock: FakeClock
) -> None:
    receiver = http()
    channel = hook(receiver.url(), rate_limit_per_hour="2")  # one channel (same target) for five budgets
    for i in range(5):
        service.create_budget(budget(channel, tenant=f"t{i}"))
        service.process_job_cost(job(f"j{i}", "80", tenant=f"t{i}"))
    result = dispatch(service)
    assert (result.sent, result.held, result.digests) == (2, 3, 0)
    held = sorted(e for e, d in deliveries(service).items() if d.status == "held")
    assert len(held) == 3 and len(receiver.requests) == 2
    clock.advance(minutes=59)
    assert not dispatch(service).worked and len(receiver.requests) == 2  # the hour is not over
    clock.advance(minutes=1, seconds=1)
    result = dispatch(service)
    assert (result.digests, result.sent) == (1, 3)
    digest = receiver.requests[2]
    body = digest.json()
    assert body["schema"] == "jobbudget.digest/v1" and sorted(e["id"] for e in body["events"]) == held
    assert all(e["schema"] == "jobbudget.alert/v1" and e["type"] == "warning" for e in body["events"])
    assert body["id"] == digest.event_id == hashlib.sha256("\n".join(held).encode()).hexdigest()
    states = deliveries(service)
    assert {states[e].status for e in held} == {"digested"}
    singles = [r.event_id for r in receiver.requests[:2]]
    assert sorted(singles + held) == sorted(states)  # every event once: alone or in the digest
    clock.advance(minutes=30)
    assert not dispatch(service).worked and len(receiver.requests) == 3


# -- crash safety ------------------------------------------------------------------------
def test_alerts_written_before_a_restart_are_delivered_by_the_next_process(
    service_factory: ServiceFactory, http: Start
) -> None:
    receiver = http()
    first = service_factory(**NO_BASE)
    first.create_budget(budget(hook(receiver.url())))
    first.process_job_cost(job("a", "100"))  # warning, throttle and block, never dispatched
    first.close()
    assert receiver.requests == []
    second = service_factory(**NO_BASE)
    assert dispatch(second).sent == 3
    assert receiver.event_ids() == dict.fromkeys(deliveries(second), 1)


def test_a_delivery_claimed_by_a_dispatcher_that_died_is_sent_once_its_lease_expires(
    service: BudgetService, store_factory: Callable[[], Store], http: Start, clock: FakeClock
) -> None:
    receiver = http()
    service.create_budget(budget(hook(receiver.url())))
    service.process_job_cost(job("a", "80"))
    dead = store_factory()  # another dispatcher on the same database claims, then dies
    (claimed,) = dead.claim_deliveries(now=clock.now, lease_until=clock.now + timedelta(minutes=5), limit=10)
    assert only_delivery(service)[1].status == "sending"
    assert not dispatch(service).worked
    clock.advance(minutes=4, seconds=59)
    assert not dispatch(service).worked and receiver.requests == []
    clock.advance(seconds=2)
    assert dispatch(service).sent == 1
    clock.advance(hours=1)
    assert not dispatch(service).worked
    assert receiver.event_ids() == {claimed.event.id: 1}
    assert only_delivery(service)[1].status == "sent"


# -- Slack and e-mail -------------------------------------------------------------------
def test_slack_receives_block_kit(service: BudgetService, http: Start) -> None:
    receiver = http()
    slack = NotificationChannel(
        type="slack", target=receiver.url("/services/T000/B000/XXXXXXXX"), events=("block",),
        metadata={"channel": "#finops", "username": "Budget bot"},
    )  # fmt: skip
    service.create_budget(budget(slack))
    service.process_job_cost(job("a", "100"))
    assert dispatch(service).sent == 1
    (got,) = receiver.requests
    block = next(a for a in service.list_alerts() if a.event.type == "block")
    payload = got.json()
    assert got.path == "/services/T000/B000/XXXXXXXX" and got.headers["content-type"].startswith("application/json")
    assert (payload["channel"], payload["username"]) == ("#finops", "Budget bot")
    header, section, context = payload["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "block: acme (all queues) at 100.0% of 100.00 USD", "emoji": True},
    }
    assert section["type"] == "section" and "new jobs are refused" in section["text"]["text"]
    fields = dict(f["text"].split("\n", 1) for f in section["fields"])
    assert fields["*Spend*"] == "100.00 USD" and fields["*Utilization*"] == "100.0%"
    assert fields["*Period*"] == "2024-01-01 to 2024-01-31"
    assert context["type"] == "context" and block.event.id in context["elements"][0]["text"]
    assert "block" in payload["text"]


def test_an_email_reaches_a_real_smtp_server_with_the_subject_prefix(
    service_factory: ServiceFactory, clock: FakeClock
) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        config = Config(smtp_host="127.0.0.1", smtp_port=port, smtp_from="jobbudget@[127.0.0.1]", **NO_BASE)
        service = service_factory(config)
        mail = NotificationChannel(
            type="email", target="ops.lead@[127.0.0.1]", events=("block",), metadata={"subject_prefix": "[FinOps]"}
        )
        service.create_budget(budget(mail))
        service.process_job_cost(job("a", "101"))
        assert dispatch(service).sent == 1
    (msg,) = mailbox.messages
    block = next(a for a in service.list_alerts() if a.event.type == "block")
    assert msg["Subject"] == "[FinOps] block: acme (all queues) at 101.0% of 100.00 USD"
    assert msg["To"] == "ops.lead@[127.0.0.1]" and msg["X-JobBudget-Event-Id"] == block.event.id
    assert [d.status for d in block.deliveries] == ["sent"]
    assert block.deliveries[0].target == "o***@[127.0.0.1]"


# -- background delivery ------------------------------------------------------------------
class Passes:
    """Counts the passes of a dispatcher that have ended."""

    def __init__(self) -> None:
        self.count = 0
        self._ended = threading.Condition()

    def ended(self) -> None:
        with self._ended:
            self.count += 1
            self._ended.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self._ended:
            assert self._ended.wait_for(lambda: self.count >= count, timeout), f"{self.count} < {count} passes"


def count_passes(service: BudgetService, monkeypatch: pytest.MonkeyPatch) -> Passes:
    passes, run = Passes(), service.core.desk.dispatcher.run

    def counted(*, timeout: float) -> Any:
        try:
            return run(timeout=timeout)
        finally:
            passes.ended()

    monkeypatch.setattr(service.core.desk.dispatcher, "run", counted)
    return passes


def test_the_background_dispatcher_delivers_without_being_asked(
    service_factory: ServiceFactory, http: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBBUDGET_NOTIFICATIONS_IN_BACKGROUND", "true")  # the environment wins over Config(...)
    service = service_factory(Config(notifications_in_background=True, **NO_BASE))
    assert service.config.notifications_in_background
    passes = count_passes(service, monkeypatch)
    receiver = http()
    service.create_budget(budget(hook(receiver.url())))
    started = time.monotonic()
    service.process_job_cost(job("a", "80"))
    assert receiver.wait_for(1, timeout=2.0), "no webhook within 2 s"
    assert time.monotonic() - started < 2.0
    deadline = time.monotonic() + 2.0
    while only_delivery(service)[1].status != "sent" and time.monotonic() < deadline:
        time.sleep(0.02)
    alert, d = only_delivery(service)
    assert (d.status, d.attempts) == ("sent", 1)
    passes.wait_for(passes.count + 2)  # a whole pass of the background loop after the send ...
    assert receiver.event_ids() == {alert.event.id: 1}  # ... sent nothing more


def test_a_dispatcher_does_not_send_what_its_lease_no_longer_covers(
    service: BudgetService, store_factory: Callable[[], Store], http: Start, clock: FakeClock
) -> None:
    """Each send here takes 40 s (of the fake clock).  The deliveries claimed together
    must not be sent once their lease could run out mid-send: another dispatcher may
    claim them by then, and both would send."""
    receiver = http()
    other = store_factory()  # a second dispatcher, watching for expired leases
    stolen: list[int] = []

    def slow(request: Any) -> None:
        clock.advance(seconds=40)
        stolen.extend(d.id for d in other.claim_deliveries(now=clock.now, lease_until=clock.now, limit=10))

    receiver.on_request = slow
    for tenant in ("t1", "t2", "t3", "t4"):
        service.create_budget(budget(hook(receiver.url()), tenant=tenant))
        service.process_job_cost(job(f"{tenant}-a", "80", tenant=tenant))
    assert dispatch(service).sent == 4
    assert stolen == []
    assert receiver.event_ids() == dict.fromkeys(deliveries(service), 1)
