"""Receivers broken in every way at once (refused, slower than the timeout, 500 for a
while, an SMTP server not started yet), then recovered: each event is accepted exactly
once by each receiver, with the same event id on every attempt, and a dead letter only
once the retries are spent.  ``test_dispatch.py`` proves each failure alone on one
event; this module runs them together, over many events, and with two dispatchers
racing on one database.  The FakeClock makes retries due (no sleeping for backoff)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics, NotificationChannel
from jobbudget.config import Config
from jobbudget.domain.alerts import DeliveryState
from jobbudget.notify.dispatcher import DispatchResult
from jobbudget.service import BudgetService
from receivers import Mailbox, Receiver, Reply, Request, free_port

pytestmark = pytest.mark.slow  # real faults: local runs may skip them with -m "not slow"; CI runs them
ServiceFactory = Callable[..., BudgetService]
NO_BASE: dict[str, Any] = {
    "cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}
}  # a job costs exactly cpu_time × 0.0001
SLOW = Reply(delay=1.0)  # longer than the channels' timeout below
TIMEOUT = "250ms"


class AnsweringReceiver(Receiver):
    """A :class:`Receiver` that also keeps how it answered each request."""

    def __init__(self, port: int = 0, default: Reply | None = None) -> None:
        self.answers: list[tuple[Request, Reply]] = []
        super().__init__(port, default)

    def _record(self, request: Request) -> Reply:
        reply = super()._record(request)
        with self._lock:
            self.answers.append((request, reply))
        return reply

    def accepted(self, ids: set[str]) -> Counter[str]:
        """Event id -> how often it was answered 2xx in time (what a client can rely on)."""
        with self._lock:
            return Counter(_event_of(r, ids) for r, reply in self.answers if reply.status < 300 and not reply.delay)

    def attempts(self, ids: set[str]) -> Counter[str]:
        with self._lock:
            return Counter(_event_of(r, ids) for r, _ in self.answers)


def _event_of(request: Request, ids: set[str]) -> str:
    """The event id: the ``X-JobBudget-Event-Id`` header, or (Slack) the id in the text."""
    if request.event_id:
        return request.event_id
    found = [i for i in ids if i.encode() in request.body]
    assert len(found) == 1, request.body[:300]
    return found[0]


def _smtp(mailbox: Mailbox, port: int) -> Controller:
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def started() -> Iterator[list[Receiver]]:
    running: list[Receiver] = []
    yield running
    for receiver in running:
        receiver.close()


def _receiver(running: list[Receiver], port: int = 0, default: Reply | None = None) -> AnsweringReceiver:
    receiver = AnsweringReceiver(port, default)
    running.append(receiver)
    return receiver


def _job(job_id: str, dollars: str, tenant: str) -> JobMetrics:
    zero = Decimal(0)
    return JobMetrics(job_id, tenant, "q1", Decimal(dollars) * 10_000, zero, zero, zero, zero)


def _states(service: BudgetService) -> dict[tuple[str, int], DeliveryState]:
    """(event id, delivery id) -> the delivery."""
    return {(a.event.id, d.id): d for a in service.list_alerts() for d in a.deliveries}


def _of_kind(service: BudgetService, kind: str) -> set[str]:
    """The events with a delivery to a channel of this type."""
    return {e for (e, _), d in _states(service).items() if d.channel_type == kind}


def _hook(url: str, **metadata: str) -> NotificationChannel:
    return NotificationChannel(type="webhook", target=url, metadata={"timeout": TIMEOUT, **metadata})


# -- everything broken at once, then recovered -------------------------------------------


@pytest.mark.parametrize("store_factory", ["sqlite", "postgres"], indirect=True)
def test_every_receiver_broken_its_own_way_gets_each_event_once_after_recovery(
    service_factory: ServiceFactory, clock: FakeClock, started: list[Receiver]
) -> None:
    down_port, smtp_port = free_port(), free_port()  # nothing listens on either yet
    failing = _receiver(started, default=Reply(500))
    slow = _receiver(started, default=SLOW)
    config = Config(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_from="jb@[127.0.0.1]", smtp_timeout=2, **NO_BASE)
    service = service_factory(config)
    channels = (
        _hook(f"http://127.0.0.1:{down_port}/hook"),
        _hook(failing.url(), retry_count="6"),
        NotificationChannel(type="slack", target=slow.url("/services/T/B/X"), events=("block",), metadata={"timeout": TIMEOUT}),
        NotificationChannel(type="email", target="ops@[127.0.0.1]", events=("throttle", "block")),
    )  # fmt: skip
    tenants = [f"t{i}" for i in range(4)]
    for tenant in tenants:
        service.create_budget(
            Budget(tenant_id=tenant, amount=Decimal(100), period=BudgetPeriod("monthly"), notifications=channels)
        )
        service.process_job_cost(_job(f"{tenant}-a", "100", tenant))  # warning, throttle and block
    ids = {a.event.id for a in service.list_alerts()}
    assert len(ids) == 12 and len(_states(service)) == 12 + 12 + 4 + 8
    outage = DispatchResult()
    for attempt in (1, 2, 3):  # three passes while every receiver is broken
        result = service.dispatch_notifications(timeout=60)
        outage += result
        assert (result.sent, result.retrying, result.failed) == (0, 36, 0)
        assert all(d.status == "pending" and d.attempts == attempt for d in _states(service).values())
        clock.advance(seconds=60)  # past any backoff of these attempts
    # the same event id on every attempt, and the outbox counted every attempt made
    assert failing.attempts(ids) == dict.fromkeys(ids, 3)
    slack_ids = _of_kind(service, "slack")
    assert slow.attempts(ids) == dict.fromkeys(slack_ids, 3)
    # recovery: the refused port listens, the 500s and the slowness stop, SMTP starts
    back = _receiver(started, port=down_port)
    failing.default = slow.default = Reply()
    mailbox = Mailbox()
    controller = _smtp(mailbox, smtp_port)
    try:
        result = service.dispatch_notifications(timeout=60)
        assert (result.sent, result.retrying, result.failed) == (36, 0, 0)
        clock.advance(hours=2)
        assert not service.dispatch_notifications(timeout=10).worked  # nothing is sent twice
    finally:
        controller.stop()
    assert back.accepted(ids) == dict.fromkeys(ids, 1) == back.attempts(ids)
    assert failing.accepted(ids) == dict.fromkeys(ids, 1)
    assert slow.accepted(ids) == dict.fromkeys(slack_ids, 1)
    mail_ids = Counter(str(m["X-JobBudget-Event-Id"]) for m in mailbox.messages)
    assert mail_ids == dict.fromkeys(_of_kind(service, "email"), 1)
    states = _states(service)
    assert all(d.status == "sent" and d.attempts == 4 for d in states.values()), states
    print(f"\nreceivers: events={len(ids)} deliveries={len(states)} outage={outage} lost=0 duplicated=0")


# -- dead letters exactly when the retries are spent -------------------------------------


def test_a_dead_letter_only_once_the_last_retry_failed(
    service_factory: ServiceFactory, clock: FakeClock, started: list[Receiver]
) -> None:
    service = service_factory(**NO_BASE)
    # both fail 3 times; ``just`` allows 3 retries (delivered on the last), ``short`` 2
    just, short = _receiver(started), _receiver(started)
    for receiver in (just, short):
        receiver.then(Reply(500), Reply(502), Reply(503))
    for tenant, receiver, retries in (("a", just, "3"), ("b", short, "2")):
        channel = _hook(receiver.url(), retry_count=retries)
        service.create_budget(
            Budget(tenant_id=tenant, amount=Decimal(100), period=BudgetPeriod("monthly"), notifications=(channel,))
        )
        service.process_job_cost(_job(f"{tenant}-j", "80", tenant))  # one warning each
    results = []
    for _ in range(4):
        results.append(service.dispatch_notifications(timeout=30))
        clock.advance(seconds=60)
    assert [(r.sent, r.retrying, r.failed) for r in results] == [(0, 2, 0), (0, 2, 0), (0, 1, 1), (1, 0, 0)]
    by_tenant = {a.event.tenant_id: (a.event.id, a.deliveries[0]) for a in service.list_alerts()}
    (a_id, a_state), (b_id, b_state) = by_tenant["a"], by_tenant["b"]
    assert (a_state.status, a_state.attempts) == ("sent", 4)
    assert (b_state.status, b_state.attempts) == ("failed", 3) and "HTTP 503" in str(b_state.last_error)
    assert just.accepted({a_id}) == {a_id: 1} and short.accepted({b_id}) == {}
    service.resend_delivery(b_state.id)  # the dead letter, once the receiver is fixed
    assert service.dispatch_notifications(timeout=30).sent == 1
    assert short.accepted({b_id}) == {b_id: 1} and short.attempts({b_id}) == {b_id: 4}


# -- two dispatchers racing on one database, a flaky receiver -----------------------------


@pytest.mark.parametrize("store_factory", ["sqlite", "postgres"], indirect=True)
def test_two_dispatchers_and_a_flaky_receiver_deliver_each_event_once(
    service_factory: ServiceFactory, clock: FakeClock, started: list[Receiver]
) -> None:
    receiver = _receiver(started)
    receiver.then(*[Reply(500), Reply(200), SLOW, Reply(503), Reply(200)] * 6)
    first, second = service_factory(**NO_BASE), service_factory(**NO_BASE)
    channel = _hook(receiver.url(), retry_count="10")
    for i in range(8):
        first.create_budget(
            Budget(tenant_id=f"t{i}", amount=Decimal(100), period=BudgetPeriod("monthly"), notifications=(channel,))
        )
        first.process_job_cost(_job(f"j{i}", "95", f"t{i}"))  # warning and throttle
    ids = {a.event.id for a in first.list_alerts()}
    assert len(ids) == 16
    errors: list[BaseException] = []
    totals: list[DispatchResult] = []

    def run(service: BudgetService) -> None:
        try:
            totals.append(service.dispatch_notifications(timeout=60))
        except BaseException as exc:
            errors.append(exc)

    for _ in range(8):
        threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        clock.advance(seconds=120)
        if all(d.status == "sent" for d in _states(first).values()):
            break
    assert not errors, errors
    states = _states(first)
    assert all(d.status == "sent" for d in states.values()), states
    assert receiver.accepted(ids) == dict.fromkeys(ids, 1)
    attempts = receiver.attempts(ids)
    assert {e: d.attempts for (e, _), d in states.items()} == attempts  # every attempt recorded, none extra
    assert sum(r.sent for r in totals) == 16
    print(f"\ntwo dispatchers: events=16 attempts={sum(attempts.values())} delivered=16 duplicated=0")
