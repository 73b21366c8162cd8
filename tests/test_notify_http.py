"""Webhook and Slack delivery against real local HTTP servers; channel settings; redaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from jobbudget.config import Config
from jobbudget.domain.alerts import AlertEvent
from jobbudget.domain.budget import NotificationChannel
from jobbudget.domain.errors import ValidationError, is_retryable
from jobbudget.notify import DeliveryError, redact, retry_count_of, send_test, sender_for, timeout_of
from jobbudget.notify.email import EmailSender
from jobbudget.notify.slack import SlackSender
from jobbudget.notify.webhook import WebhookSender, parse_retry_after
from receivers import LOCAL

TOKEN = "TOKENq9f8e7d6c5b4a"
AUTH = "Bearer AUTHzyx987654321"
HMAC_SECRET = "HMACsecret-5544-k"
SMTP_PASSWORD = "SMTPpw-77123-x"
ADDRESS = "finance.team@example.com"
FIELDS = {"schema", "id", "type", "tenant_id", "queue_name", "budget_id", "current_spend", "budget_amount",
          "utilization", "currency", "forecast_spend", "period_start", "period_end", "occurred_at", "message"}  # fmt: skip


def event(**changes: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "id": "evt-0001", "type": "block", "budget_id": "b-1", "tenant_id": "acme", "queue_name": "ml",
        "period_start": date(2024, 1, 1), "period_end": date(2024, 1, 31),
        "occurred_at": datetime(2024, 1, 15, 12, 0, tzinfo=UTC), "current_spend": Decimal("5115.000000001"),
        "budget_amount": Decimal("5E+3"), "utilization": Decimal("1.023"), "message": "over budget",
    }  # fmt: skip
    values.update(changes)
    return AlertEvent(**values)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """What a local HTTP server answers, and what it received."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo: bool = False  # answer with the request's path and headers (as a careless server might)
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def handler_for(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.requests.append(Received(self.path, headers, body))
            if server.delay:
                server.stop.wait(server.delay)
            answer = f"{self.path} {headers}".encode() if server.echo else server.body
            self.send_response(server.status)
            for name, value in server.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is expected here


@pytest.fixture
def http() -> Iterator[Callable[..., Server]]:
    running: list[tuple[QuietServer, Server]] = []

    def start(**options: Any) -> Server:
        spec = Server(**options)
        httpd = QuietServer(("127.0.0.1", 0), handler_for(spec))
        spec.port = int(httpd.server_address[1])
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        running.append((httpd, spec))
        return spec

    yield start
    for httpd, spec in running:
        spec.stop.set()
        httpd.shutdown()
        httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook(url: str, **metadata: str) -> NotificationChannel:
    return NotificationChannel(type="webhook", target=url, metadata=metadata)


def fails(sender: Any, channel: NotificationChannel, events: list[AlertEvent] | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        sender.send(channel, events or [event()])
    return info.value


def test_webhook_body_headers_and_signature(http: Callable[..., Server]) -> None:
    server = http()
    channel = webhook(server.url(f"/hooks/{TOKEN}"), auth_header=AUTH, secret=HMAC_SECRET)
    with WebhookSender(policy=LOCAL) as sender:
        sender.send(channel, [event(forecast_spend=Decimal("5800.50"))])
    (got,) = server.requests
    body = json.loads(got.body)
    assert set(body) == FIELDS
    assert body["schema"] == "jobbudget.alert/v1" and body["id"] == "evt-0001" and body["type"] == "block"
    assert (body["current_spend"], body["budget_amount"], body["utilization"]) == ("5115.000000001", "5000", "1.023")
    assert (body["forecast_spend"], body["currency"], body["message"]) == ("5800.50", "USD", "over budget")
    assert (body["period_start"], body["period_end"]) == ("2024-01-01", "2024-01-31")
    assert datetime.fromisoformat(body["occurred_at"]) == datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    expected = hmac.new(HMAC_SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-jobbudget-signature"], f"sha256={expected}")
    assert got.headers["authorization"] == AUTH
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("jobbudget/")
    assert got.headers["x-jobbudget-event-id"] == "evt-0001"
    assert got.path == f"/hooks/{TOKEN}"


def test_webhook_digest_and_no_optional_headers(http: Callable[..., Server]) -> None:
    server = http(status=204, body=b"")
    held = [event(id=f"evt-{i}", type="warning", forecast_spend=None) for i in (3, 1, 2)]
    with WebhookSender(policy=LOCAL) as sender:
        sender.send(webhook(server.url()), held, digest=True)
    (got,) = server.requests
    body = json.loads(got.body)
    digest = hashlib.sha256(b"evt-1\nevt-2\nevt-3").hexdigest()
    assert body["schema"] == "jobbudget.digest/v1" and body["id"] == digest
    assert [e["id"] for e in body["events"]] == ["evt-3", "evt-1", "evt-2"]
    assert all(set(e) == FIELDS and e["forecast_spend"] is None for e in body["events"])
    assert got.headers["x-jobbudget-event-id"] == digest
    assert "authorization" not in got.headers and "x-jobbudget-signature" not in got.headers


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (500, {}, True, None),
        (503, {"Retry-After": "7"}, True, 7.0),
        (429, {"Retry-After": "30"}, True, 30.0),
        (400, {"Retry-After": "30"}, False, None),
        (404, {}, False, None),
        (301, {"Location": "http://127.0.0.1:1/"}, False, None),
    ],
)
def test_webhook_answers_are_classified(
    http: Callable[..., Server], status: int, headers: dict[str, str], retryable: bool, retry_after: float | None
) -> None:
    server = http(status=status, headers=headers, body=b"nope")
    with WebhookSender(policy=LOCAL) as sender:
        err = fails(sender, webhook(server.url()))
    assert (err.retryable, err.status, err.retry_after) == (retryable, status, retry_after)
    assert is_retryable(err) is retryable and f"HTTP {status}" in err.message and "nope" in err.message
    assert len(server.requests) == 1  # no redirect followed, no retry inside the sender


def test_retry_after_as_an_http_date(http: Callable[..., Server]) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    server = http(status=429, headers={"Retry-After": later})
    with WebhookSender(policy=LOCAL) as sender:
        err = fails(sender, webhook(server.url()))
    assert err.retryable and err.retry_after is not None and 100 <= err.retry_after <= 121


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("12", now=now) == 12.0
    assert parse_retry_after("Mon, 01 Jan 2024 00:01:00 GMT", now=now) == 60.0
    assert parse_retry_after("Sun, 31 Dec 2023 00:00:00 GMT", now=now) == 0.0  # in the past: now
    assert parse_retry_after("99999999", now=now) == 86400.0
    assert parse_retry_after(None) is None and parse_retry_after(" ") is None
    assert parse_retry_after("soon") is None and parse_retry_after("-5") is None


def test_a_slow_server_is_a_retryable_timeout(http: Callable[..., Server]) -> None:
    server = http(delay=3.0)
    with WebhookSender(policy=LOCAL) as sender:
        err = fails(sender, webhook(server.url(), timeout="200ms"))
    assert err.retryable and err.status is None and "did not answer within 0.2s" in err.message


def test_a_server_that_is_down_is_retryable() -> None:
    with WebhookSender(policy=LOCAL) as sender:
        err = fails(sender, webhook(f"http://127.0.0.1:{closed_port()}/hook", timeout="2s"))
    assert err.retryable and err.status is None and "connection failed" in err.message


def test_slack_block_kit_payload_with_overrides(http: Callable[..., Server]) -> None:
    server = http()
    url = server.url(f"/services/T000/B000/{TOKEN}")
    meta = {"channel": "#finops", "username": "Budget bot", "icon": ":moneybag:"}
    slack = NotificationChannel(type="slack", target=url, metadata=meta)
    with SlackSender(policy=LOCAL) as sender:
        sender.send(slack, [event(queue_name="<ml>&co", forecast_spend=Decimal("7000"))])
        sender.send(NotificationChannel(type="slack", target=url, metadata={"icon": "https://x.example/i.png"}),
                    [event(id=f"e{i}") for i in range(5)], digest=True)  # fmt: skip
    one, digest = (json.loads(r.body) for r in server.requests)
    assert (one["channel"], one["username"], one["icon_emoji"]) == ("#finops", "Budget bot", ":moneybag:")
    assert "icon_url" not in one and "block" in one["text"]
    header, section, context = one["blocks"]
    assert (
        header["type"] == "header"
        and header["text"]["text"] == "block: acme/&lt;ml&gt;&amp;co at 102.3% of 5,000.00 USD"
    )
    assert "acme/&lt;ml&gt;&amp;co" in section["text"]["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in section["fields"]}
    assert fields["*Spend*"] == "5,115.00 USD" and fields["*Utilization*"] == "102.3%"
    assert fields["*Forecast*"] == "7,000.00 USD" and fields["*Period*"] == "2024-01-01 to 2024-01-31"
    assert context["type"] == "context" and "evt-0001" in context["elements"][0]["text"]
    assert digest["icon_url"] == "https://x.example/i.png" and "channel" not in digest
    assert digest["blocks"][0]["text"]["text"] == "5 budget alerts held back by the rate limit"
    assert all(f"e{i}" in json.dumps(digest["blocks"]) for i in range(5))
    assert server.requests[0].headers["content-type"].startswith("application/json")


def test_slack_errors(http: Callable[..., Server]) -> None:
    gone = http(status=404, body=b"channel_not_found")
    busy = http(status=429, headers={"Retry-After": "5"}, body=b"rate_limited")
    with SlackSender(policy=LOCAL) as sender:
        err = fails(sender, NotificationChannel(type="slack", target=gone.url(f"/services/T0/B0/{TOKEN}")))
        assert (err.retryable, err.status) == (False, 404) and "channel_not_found" in err.message
        err = fails(sender, NotificationChannel(type="slack", target=busy.url(f"/services/T0/B0/{TOKEN}")))
        assert (err.retryable, err.retry_after) == (True, 5.0)


def test_send_test_goes_through_the_right_sender(http: Callable[..., Server]) -> None:
    server = http()
    send_test(webhook(server.url()), Config())
    body = json.loads(server.requests[0].body)
    assert body["type"] == "test" and "TEST" in body["message"] and body["id"].startswith("test-")


def test_sender_for_each_type() -> None:
    config = Config()
    assert isinstance(sender_for("email", config), EmailSender)
    assert isinstance(sender_for("slack", config), SlackSender)
    assert isinstance(sender_for("webhook", config), WebhookSender)
    with pytest.raises(ValidationError) as info:
        sender_for("sms", config)
    assert info.value.field == "notifications.type"


@pytest.mark.parametrize(
    ("given", "seconds"), [(None, 10.0), ("30s", 30.0), ("5", 5.0), ("250ms", 0.25), ("2m", 120.0)]
)
def test_timeout_of(given: str | None, seconds: float) -> None:
    meta = {} if given is None else {"timeout": given}
    assert timeout_of(webhook("https://example.com/h", **meta)) == seconds


@pytest.mark.parametrize("bad", ["soon", "0", "-1s", "1h"])
def test_bad_timeouts_name_the_key(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        timeout_of(webhook("https://example.com/h", timeout=bad))
    assert info.value.field == "notifications.metadata.timeout"


def test_retry_count_of() -> None:
    assert retry_count_of(webhook("https://example.com/h")) == 5
    assert [retry_count_of(webhook("https://example.com/h", retry_count=n)) for n in ("0", "20")] == [0, 20]
    for bad in ("21", "-1", "three", "2.5"):
        with pytest.raises(ValidationError) as info:
            retry_count_of(webhook("https://example.com/h", retry_count=bad))
        assert info.value.field == "notifications.metadata.retry_count"


def test_redact_removes_every_secret_and_keeps_the_rest() -> None:
    slack = NotificationChannel(type="slack", target=f"https://hooks.slack.com/services/T000/B000/{TOKEN}")
    assert redact(f"POST {slack.target} failed; token {TOKEN}", slack) == (
        "POST https://hooks.slack.com/services/T000/**** failed; token ***"
    )
    hook = webhook(
        f"https://bob:pa55word@example.com/in/{TOKEN}?sig=QUERYsecret1#frag", auth_header=AUTH, secret=HMAC_SECRET
    )
    text = redact(f"{hook.target} pa55word {TOKEN} QUERYsecret1 {AUTH} AUTHzyx987654321 {HMAC_SECRET} webhook ok", hook)
    assert text == "https://example.com/*** *** *** *** *** *** *** webhook ok"
    mail = NotificationChannel(type="email", target=ADDRESS)
    assert redact(f"550 <{ADDRESS}> unknown; finance.team? stops", mail, extra=[SMTP_PASSWORD]) == (
        "550 <f***@example.com> unknown; ***? stops"
    )


def test_no_secret_reaches_logs_or_errors(http: Callable[..., Server], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="jobbudget")  # a service built by another test may have raised it
    texts: list[str] = []

    def record(sender: Any, channel: NotificationChannel) -> None:
        with pytest.raises(DeliveryError) as info:
            sender.send(channel, [event()])
        texts.extend([str(info.value), repr(info.value), info.value.message])

    ok, echo, slow = http(), http(status=400, echo=True), http(delay=3.0)
    meta = {"auth_header": AUTH, "secret": HMAC_SECRET, "timeout": "300ms"}
    with WebhookSender(policy=LOCAL) as hooks, SlackSender(policy=LOCAL) as slack:
        hooks.send(webhook(ok.url(f"/in/{TOKEN}"), **meta), [event()])
        slack.send(NotificationChannel(type="slack", target=ok.url(f"/services/T0/B0/{TOKEN}")), [event()])
        record(hooks, webhook(echo.url(f"/in/{TOKEN}?key={TOKEN}"), **meta))  # the answer repeats our secrets
        record(slack, NotificationChannel(type="slack", target=echo.url(f"/services/T0/B0/{TOKEN}")))
        record(hooks, webhook(slow.url(f"/in/{TOKEN}"), **meta))
        record(hooks, webhook(f"http://127.0.0.1:{closed_port()}/in/{TOKEN}", **meta))
    assert any(r.name == "httpx" for r in caplog.records)  # httpx logged the requests, redacted
    assert any(r.name.startswith("jobbudget.notify") for r in caplog.records)

    class Refuse:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            return f"550 5.1.1 <{address}>: no such user"

    def reject(*args: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)

    for port, user in ((closed_port(), None), (closed_port(), "alerts")):
        controller = Controller(Refuse(), hostname="127.0.0.1", port=port, authenticator=reject, auth_require_tls=False)
        controller.start()
        try:
            config = Config(smtp_host="127.0.0.1", smtp_port=port, smtp_user=user, smtp_password=SMTP_PASSWORD)
            record(EmailSender(config), NotificationChannel(type="email", target=ADDRESS))
        finally:
            controller.stop()
    logs = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]  # not the SMTP test server
    everything = "\n".join(logs + texts)
    assert "o***@example.com" not in everything and "f***@example.com" in everything
    for secret in (TOKEN, AUTH, "AUTHzyx987654321", HMAC_SECRET, SMTP_PASSWORD, ADDRESS, "finance.team"):
        assert secret not in everything, secret
