"""Webhook signatures per the Standard Webhooks specification, checked with the
specification's own Python verifier (``standardwebhooks``) against real deliveries
captured by an HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from cli_support import runner
from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics, NotificationChannel
from jobbudget.cli import app
from jobbudget.domain.alerts import AlertEvent
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.signing import new_secret, signing_key
from jobbudget.notify import DeliveryError
from jobbudget.notify.dispatcher import Dispatcher
from jobbudget.notify.webhook import WebhookSender
from jobbudget.storage.memory import MemoryStore
from receivers import LOCAL, Receiver, Reply, Request, http_receivers

Start = Callable[..., Receiver]
LEGACY_SECRET = "hmacK3y-55aa0909-q"  # a secret set before jobbudget followed the specification


@pytest.fixture
def http() -> Iterator[Start]:
    with http_receivers() as start:
        yield start


def event(**changes: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "id": "3b0c1f8e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", "type": "block", "budget_id": "b-1", "tenant_id": "acme",
        "queue_name": "ml", "period_start": date(2024, 1, 1), "period_end": date(2024, 1, 31),
        "occurred_at": datetime(2024, 1, 15, 12, 0, tzinfo=UTC), "current_spend": Decimal("5115"),
        "budget_amount": Decimal("5000"), "utilization": Decimal("1.023"),
    }  # fmt: skip
    values.update(changes)
    return AlertEvent(**values)


def hook(url: str, **metadata: str) -> NotificationChannel:
    return NotificationChannel(type="webhook", target=url, metadata=metadata)


def deliver(receiver: Receiver, secret: str, events: list[AlertEvent], **options: Any) -> Request:
    digest = options.pop("digest", False)
    with WebhookSender(policy=LOCAL, **options) as sender:
        sender.send(hook(receiver.url(), secret=secret), events, digest=digest)
    return receiver.requests[-1]


def test_a_delivery_verifies_with_the_standard_webhooks_library(http: Start) -> None:
    receiver, secret = http(), new_secret()
    before = int(time.time())
    got = deliver(receiver, secret, [event()])
    assert Webhook(secret).verify(got.body, got.headers) == json.loads(got.body)
    assert got.headers["webhook-id"] == "3b0c1f8e-2d4a-4c6b-9e7f-0a1b2c3d4e5f" == got.json()["id"]
    assert before <= int(got.headers["webhook-timestamp"]) <= time.time()
    assert got.headers["webhook-signature"].startswith("v1,")
    assert "x-jobbudget-signature" not in got.headers  # a whsec_ secret gets the standard signature only
    assert got.headers["x-jobbudget-event-id"] == got.headers["webhook-id"]  # deprecated alias
    # a digest is signed the same way, under its digest id
    held = [event(id=f"evt-{i}") for i in range(3)]
    got = deliver(receiver, secret, held, digest=True)
    assert Webhook(secret).verify(got.body, got.headers)["id"] == got.headers["webhook-id"]
    assert got.headers["webhook-id"] == hashlib.sha256(b"evt-0\nevt-1\nevt-2").hexdigest()


def test_a_tampered_body_or_another_key_is_rejected(http: Start) -> None:
    receiver, secret = http(), new_secret()
    got = deliver(receiver, secret, [event()])
    tampered = got.body.replace(b'"current_spend":"5115"', b'"current_spend":"5"')
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(tampered, got.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(new_secret()).verify(got.body, got.headers)
    other_id = {**got.headers, "webhook-id": "another-event"}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(got.body, other_id)


def test_a_captured_delivery_cannot_be_replayed_later(http: Start) -> None:
    """A delivery captured ten minutes ago fails the verifier's timestamp check, and
    putting a fresh timestamp on it breaks the signature."""
    receiver, secret = http(), new_secret()
    got = deliver(receiver, secret, [event()], wall_clock=lambda: time.time() - 600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(got.body, got.headers)
    restamped = {**got.headers, "webhook-timestamp": str(int(time.time()))}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(got.body, restamped)


def test_retries_carry_the_same_webhook_id_with_a_fresh_timestamp(http: Start, clock: FakeClock) -> None:
    receiver = http().then(Reply(500), Reply(503))
    secret = new_secret()
    seconds = itertools.count(0, 7)
    sender = WebhookSender(
        policy=LOCAL, wall_clock=lambda: time.time() + next(seconds)
    )  # each attempt later than the one before
    config = Config(cost_model={"cpu_time_weight": "0.0001", "base_job_weight": "0"})
    with BudgetService(config, clock=clock, store=MemoryStore()) as service:
        service.create_budget(
            Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly"),
                   notifications=(hook(receiver.url(), secret=secret),))
        )  # fmt: skip
        service.process_job_cost(JobMetrics("j1", "acme", "q1", 800_000, 0, 0, 0, 0))  # 80 USD: warning
        dispatcher = Dispatcher(store=service.store, config=config, clock=clock, senders={"webhook": sender})
        try:
            for _ in range(3):
                dispatcher.run_once()
                clock.advance(minutes=1)  # past any backoff
        finally:
            dispatcher.close()
        (alert,) = service.list_alerts()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [alert.event.id] * 3
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    for request in receiver.requests:  # every attempt verifies on its own
        assert Webhook(secret).verify(request.body, request.headers)["id"] == alert.event.id
    assert alert.deliveries[0].status == "sent" and alert.deliveries[0].attempts == 3


def test_a_legacy_secret_signs_with_its_utf8_bytes_and_keeps_the_old_header(http: Start) -> None:
    receiver = http()
    got = deliver(receiver, LEGACY_SECRET, [event()])
    assert Webhook(LEGACY_SECRET.encode("utf-8")).verify(got.body, got.headers)["id"] == got.headers["webhook-id"]
    expected = hmac.new(LEGACY_SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-jobbudget-signature"] == f"sha256={expected}"  # deprecated, still sent


def test_without_a_secret_the_id_and_time_are_sent_unsigned(http: Start) -> None:
    receiver = http()
    with WebhookSender(policy=LOCAL) as sender:
        sender.send(hook(receiver.url()), [event()])
    (got,) = receiver.requests
    assert got.headers["webhook-id"] == got.json()["id"] and got.headers["webhook-timestamp"].isdigit()
    assert "webhook-signature" not in got.headers and "x-jobbudget-signature" not in got.headers


@pytest.mark.parametrize(
    "bad", ["whsec_not*base64!", "whsec_" + base64.b64encode(b"short key").decode(), "whsec_" + "A" * 100]
)
def test_an_unusable_whsec_secret_is_refused_without_showing_it(http: Start, bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        BudgetService(Config(), store=MemoryStore()).create_budget(
            Budget(tenant_id="acme", amount=Decimal(1), period=BudgetPeriod("monthly"),
                   notifications=(hook("https://example.com/h", secret=bad),))
        )  # fmt: skip
    assert info.value.field == "notifications.metadata.secret" and bad[6:] not in str(info.value)
    with pytest.raises(ValidationError) as info:
        Config(
            notification_channels=[{"type": "webhook", "target": "https://example.com/h", "metadata": {"secret": bad}}]
        )
    assert bad[6:] not in str(info.value)
    receiver = http()
    with WebhookSender(policy=LOCAL) as sender, pytest.raises(DeliveryError) as failed:
        sender.send(hook(receiver.url(), secret=bad), [event()])
    assert not failed.value.retryable and "notifications.metadata.secret" in failed.value.message
    assert bad[6:] not in failed.value.message and not receiver.requests


def test_an_id_with_a_full_stop_is_never_signed(http: Start) -> None:
    """The spec forbids "." in the id: "a.1" + "2..." could pass for "a" + "1.2..."."""
    receiver = http()
    with WebhookSender(policy=LOCAL) as sender, pytest.raises(DeliveryError) as failed:
        sender.send(hook(receiver.url(), secret=new_secret()), [event(id="evt.1")])
    assert not failed.value.retryable and not receiver.requests


def test_notify_secret_makes_a_secret_the_verifier_accepts() -> None:
    result = runner.invoke(app, ["notify", "secret", "--json"])
    assert result.exit_code == 0, result.output
    secret = json.loads(result.stdout)["secret"]
    assert secret.startswith("whsec_") and len(signing_key(secret)) == 32
    Webhook(secret)  # the library reads it
    assert runner.invoke(app, ["notify", "secret"]).stdout.strip() != secret  # a new one each time
