"""E-mail alerts against a real SMTP server (aiosmtpd on 127.0.0.1), and the message texts."""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from jobbudget.config import Config
from jobbudget.domain.alerts import AlertEvent, describe
from jobbudget.domain.budget import NotificationChannel
from jobbudget.notify import DeliveryError, send_test, sender_for
from jobbudget.notify.email import EmailSender, message_id
from jobbudget.notify.messages import digest_id, render_email
from receivers import self_signed

RECIPIENT = "ops.lead@example.com"
PASSWORD = "pw-Zq81-never-shown"


def event(**changes: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "id": "evt-0001",
        "type": "block",
        "budget_id": "b-1",
        "tenant_id": "acme",
        "queue_name": "ml",
        "period_start": date(2024, 1, 1),
        "period_end": date(2024, 1, 31),
        "occurred_at": datetime(2024, 1, 15, 12, 0, tzinfo=UTC),
        "current_spend": Decimal("5115.00"),
        "budget_amount": Decimal("5000.00"),
        "utilization": Decimal("1.023"),
        "forecast_spend": Decimal("5800.5"),
    }
    values.update(changes)
    return AlertEvent(**values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Recorder:
    """aiosmtpd handler: keeps what it receives; ``rcpt_reply``/``data_reply`` fail on purpose."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password.decode() == PASSWORD, handled=False)


Serve = Callable[..., tuple[Recorder, Config]]


@pytest.fixture
def smtp() -> Iterator[Serve]:
    """Start a real SMTP server; returns its recorder and a Config pointing at it."""
    controllers: list[Controller] = []

    def serve(recorder: Recorder | None = None, *, config: dict[str, Any] | None = None, **server: Any) -> Any:
        recorder = recorder or Recorder()
        port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port, **server)
        controller.start()
        controllers.append(controller)
        settings = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout": 5.0}
        settings.update(config or {})
        return recorder, Config(smtp_from="JobBudget <alerts@jobbudget.example>", **settings)

    yield serve
    for controller in controllers:
        controller.stop()


CHANNEL = NotificationChannel(type="email", target=RECIPIENT, events=("block",))


def parts(msg: EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(preferencelist=("plain",))
    rich = msg.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    return str(plain.get_content()), str(rich.get_content())


def test_an_alert_arrives_with_subject_both_parts_and_headers(smtp: Serve) -> None:
    recorder, config = smtp()
    EmailSender(config).send(CHANNEL, [event()])
    (msg,) = recorder.messages
    assert msg["Subject"] == "[jobbudget] block: acme/ml at 102.3% of 5,000.00 USD"
    assert msg["To"] == RECIPIENT and "alerts@jobbudget.example" in msg["From"]
    assert msg["X-JobBudget-Event-Id"] == "evt-0001"
    assert msg["Message-ID"].strip() == message_id("evt-0001", config.smtp_from)
    assert msg["Message-ID"].endswith("@jobbudget.example>")
    assert msg.get_content_type() == "multipart/alternative"
    text, rich = parts(msg)
    for body in (text, rich):
        for needle in ("5,115.00 USD", "5,000.00 USD", "102.3%", "2024-01-01", "2024-01-31", "5,800.50 USD"):
            assert needle in body
        assert "evt-0001" in body
        assert "new jobs are refused" in body  # what happens next
    assert describe(event()) in text


def test_a_resend_has_the_same_message_id_and_a_digest_its_own(smtp: Serve) -> None:
    recorder, config = smtp()
    sender = EmailSender(config)
    sender.send(CHANNEL, [event()])
    sender.send(CHANNEL, [event()])
    held = [event(id=f"evt-{i}", type="warning") for i in range(5)]
    sender.send(CHANNEL, held, digest=True)
    first, again, digest = recorder.messages
    assert first["Message-ID"] == again["Message-ID"]
    assert digest["Message-ID"] != first["Message-ID"]
    assert digest["X-JobBudget-Event-Id"] == digest_id(held)
    assert digest["Subject"] == "[jobbudget] 5 budget alerts held back by the rate limit"
    text, rich = parts(digest)
    assert all(f"evt-{i}" in text and f"evt-{i}" in rich for i in range(5))


def test_subject_prefix_from_metadata_and_html_is_escaped(smtp: Serve) -> None:
    recorder, config = smtp()
    channel = NotificationChannel(type="email", target=RECIPIENT, metadata={"subject_prefix": "[FinOps]"})
    sender_for("email", config).send(channel, [event(queue_name="<script>&ml")])
    (msg,) = recorder.messages
    assert msg["Subject"] == "[FinOps] block: acme/<script>&ml at 102.3% of 5,000.00 USD"
    text, rich = parts(msg)
    assert "acme/<script>&ml" in text
    assert "<script>" not in rich and "acme/&lt;script&gt;&amp;ml" in rich


def test_login_only_with_a_user_and_the_password_never_shows(smtp: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="jobbudget")  # a service built by another test may have raised it
    auth = Recorder()
    _, config = smtp(
        auth, config={"smtp_user": "alerts", "smtp_password": PASSWORD}, authenticator=auth.authenticate,
        auth_require_tls=False,
    )  # fmt: skip
    EmailSender(config).send(CHANNEL, [event()])
    assert auth.logins == [("alerts", PASSWORD)] and len(auth.messages) == 1
    wrong = Config(**{**config.model_dump(), "smtp_password": "Wrong-" + PASSWORD})
    with pytest.raises(DeliveryError) as info:
        EmailSender(wrong).send(CHANNEL, [event()])
    assert not info.value.retryable and info.value.status == 535
    assert "rejected the login" in str(info.value)
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]  # not the test server's own log
    assert any(r.name.startswith("jobbudget.notify") for r in ours)
    logs = "\n".join(r.getMessage() for r in ours) + str(info.value) + repr(info.value)
    assert PASSWORD not in logs and RECIPIENT not in logs and "ops.lead" not in logs
    attempts = len(auth.logins)
    plain, no_user = smtp(authenticator=auth.authenticate, auth_require_tls=False)
    EmailSender(no_user).send(CHANNEL, [event()])  # no user configured: no AUTH attempted
    assert len(plain.messages) == 1 and len(auth.logins) == attempts


def test_recipient_refused_550_is_permanent_and_redacted(smtp: Serve) -> None:
    _, config = smtp(Recorder(rcpt_reply="550 5.1.1 {address}: Recipient address rejected"))
    with pytest.raises(DeliveryError) as info:
        EmailSender(config).send(CHANNEL, [event()])
    err = info.value
    assert (err.retryable, err.status) == (False, 550)
    assert "Recipient address rejected" in err.message and "o***@example.com" in err.message
    assert "ops.lead" not in err.message


@pytest.mark.parametrize(
    ("reply", "retryable", "status"),
    [("451 4.3.0 try again later", True, 451), ("554 5.7.1 message refused", False, 554)],
)
def test_data_replies_4xx_retry_and_5xx_do_not(smtp: Serve, reply: str, retryable: bool, status: int) -> None:
    _, config = smtp(Recorder(data_reply=reply))
    with pytest.raises(DeliveryError) as info:
        EmailSender(config).send(CHANNEL, [event()])
    assert (info.value.retryable, info.value.status) == (retryable, status)


@pytest.fixture
def rude_server() -> Iterator[Callable[[bool], int]]:
    """A TCP server that closes every connection at once (or, ``silent``, never says hello)."""
    stop = threading.Event()
    servers: list[socket.socket] = []

    def start(silent: bool) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)
        held: list[socket.socket] = []

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                if silent:
                    held.append(conn)
                else:
                    conn.close()

        threading.Thread(target=loop, daemon=True).start()
        return int(server.getsockname()[1])

    yield start
    stop.set()
    for server in servers:
        server.close()


def test_a_server_that_hangs_up_is_retryable(rude_server: Callable[[bool], int]) -> None:
    config = Config(smtp_host="127.0.0.1", smtp_port=rude_server(False), smtp_timeout=2)
    with pytest.raises(DeliveryError) as info:
        EmailSender(config).send(CHANNEL, [event()])
    assert info.value.retryable and "closed the connection" in info.value.message


def test_a_silent_server_times_out_retryably(rude_server: Callable[[bool], int]) -> None:
    config = Config(smtp_host="127.0.0.1", smtp_port=rude_server(True), smtp_timeout=0.3)
    with pytest.raises(DeliveryError) as info:
        EmailSender(config).send(CHANNEL, [event()])
    assert info.value.retryable and "timed out" in info.value.message


def test_a_closed_port_is_retryable() -> None:
    config = Config(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=2)
    with pytest.raises(DeliveryError) as info:
        EmailSender(config).send(CHANNEL, [event()])
    assert info.value.retryable and "refused" in info.value.message


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), "IP:127.0.0.1")


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_starttls_and_implicit_tls_with_login(smtp: Serve, tls_files: tuple[Path, Path], mode: str) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    auth = Recorder()
    settings = {"smtp_user": "alerts", "smtp_password": PASSWORD, f"smtp_{mode}": True}
    tls: dict[str, Any] = {"tls_context": server_ctx, "require_starttls": True}
    if mode == "ssl":  # aiosmtpd offers AUTH over implicit TLS only when told TLS is not required
        tls = {"ssl_context": server_ctx, "auth_require_tls": False}
    _, config = smtp(auth, config=settings, authenticator=auth.authenticate, **tls)
    EmailSender(config, ssl_context=ssl.create_default_context(cafile=str(cert))).send(CHANNEL, [event()])
    assert auth.logins == [("alerts", PASSWORD)] and len(auth.messages) == 1
    with pytest.raises(DeliveryError) as info:  # the system trust store does not know the certificate
        EmailSender(config).send(CHANNEL, [event()])
    assert not info.value.retryable and "certificate" in info.value.message


def test_send_test_mail_is_clearly_labelled(smtp: Serve) -> None:
    recorder, config = smtp()
    send_test(CHANNEL, config)
    (msg,) = recorder.messages
    assert msg["Subject"].startswith("[jobbudget] TEST notification")
    assert msg["X-JobBudget-Event-Id"].startswith("test-")
    assert "made up" in parts(msg)[0]


def test_rendering_rules() -> None:
    content = render_email([event(queue_name="", forecast_spend=None, type="warning")], subject_prefix="")
    assert content.subject == "warning: acme (all queues) at 102.3% of 5,000.00 USD"
    assert "Forecast" not in content.text and content.key == "evt-0001"
    with pytest.raises(ValueError, match="digest"):
        render_email([event(), event(id="evt-2")])
    with pytest.raises(ValueError):
        render_email([], digest=True)
    one = render_email([event()], digest=True)
    assert one.subject == "[jobbudget] 1 budget alert held back by the rate limit"
    assert message_id("k", "nobody") == message_id("k", "nobody") != message_id("k2", "nobody")
