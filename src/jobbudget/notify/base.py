"""What every sender shares: the error it raises, the per-channel settings it reads
(``timeout``, ``retry_count``), secret redaction, and picking the sender of a channel.

Channel metadata read here:

``timeout``
    How long one delivery may take, as ``"30s"``, ``"1m"``, ``"500ms"`` or seconds
    (``"5"``); default 10 s, at most 300 s.
``retry_count``
    How many times a failed delivery is retried (by the outbox, not by the sender);
    default 5, from 0 to 20.
"""

from __future__ import annotations

import calendar
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ..config import Config, parse_duration
from ..domain.alerts import AlertEvent
from ..domain.budget import CHANNEL_TYPES, REDACTED, SECRET_METADATA_KEYS, NotificationChannel, redact_target
from ..domain.errors import JobBudgetError, ValidationError

__all__ = [
    "DEFAULT_RETRY_COUNT",
    "DEFAULT_TIMEOUT",
    "MAX_RETRY_COUNT",
    "MAX_TIMEOUT",
    "DeliveryError",
    "Sender",
    "TargetNotAllowedError",
    "close_sender",
    "make_test_event",
    "metadata_value",
    "redact",
    "retry_count_of",
    "send_test",
    "sender_for",
    "timeout_of",
]

log = logging.getLogger("jobbudget.notify")

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 300.0
DEFAULT_RETRY_COUNT = 5
MAX_RETRY_COUNT = 20
#: Pieces of a secret at least this long are removed wherever they occur; shorter
#: ones only where they stand alone (so "ops" does not mangle "stops").
_ANYWHERE = 8
#: Path segments and query values shorter than this are not hunted for on their own
#: (the whole path and query always are): "/api/v1/hook" has no secret in "v1".
_MIN_URL_PIECE = 6


class DeliveryError(JobBudgetError):
    """A message could not be delivered.

    ``retryable``: trying again later may succeed (timeouts, connection errors, HTTP
    5xx and 429, SMTP 4xx).  ``retry_after``: seconds the receiver asked us to wait
    (HTTP ``Retry-After``), if it said.  ``status``: the HTTP status or SMTP reply
    code, if there was one.  The message never contains the channel's secrets.
    """

    code = "DELIVERY_FAILED"

    def __init__(
        self, message: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class TargetNotAllowedError(DeliveryError):
    """The target's address is one the outbound policy refuses (loopback, private,
    link-local, ...: see :mod:`jobbudget.domain.outbound`).  Permanent; nothing was sent."""

    code = "TARGET_NOT_ALLOWED"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class Sender(Protocol):
    """Delivers alert events to one kind of channel."""

    def send(self, channel: NotificationChannel, events: Sequence[AlertEvent], *, digest: bool = False) -> None:
        """Send one message: a single event, or with ``digest=True`` several events
        held back (by the rate limit) in one message.  Raises :class:`DeliveryError`."""
        ...


def metadata_value(channel: NotificationChannel, key: str) -> str | None:
    """``channel.metadata[key]``, matching the key case-insensitively; ``None`` if absent."""
    if key in channel.metadata:
        return channel.metadata[key]
    for name, value in channel.metadata.items():
        if name.lower() == key:
            return value
    return None


def timeout_of(channel: NotificationChannel) -> float:
    """The channel's delivery timeout in seconds (metadata ``timeout``, default 10 s)."""
    raw = metadata_value(channel, "timeout")
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT
    try:
        seconds = parse_duration(raw).total_seconds()
    except ValueError as exc:
        raise ValidationError("notifications.metadata.timeout", raw, str(exc)) from None
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValidationError(
            "notifications.metadata.timeout", raw, f"must be more than 0 and at most {MAX_TIMEOUT:.0f}s"
        )
    return seconds


def retry_count_of(channel: NotificationChannel) -> int:
    """How often a failed delivery is retried (metadata ``retry_count``, default 5, 0..20)."""
    raw = metadata_value(channel, "retry_count")
    if raw is None or not raw.strip():
        return DEFAULT_RETRY_COUNT
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= MAX_RETRY_COUNT:
        raise ValidationError(
            "notifications.metadata.retry_count", raw, f"must be a whole number from 0 to {MAX_RETRY_COUNT}"
        )
    return int(text)


# -- redaction ---------------------------------------------------------------------------
def _url_pieces(kind: str, target: str) -> Iterable[tuple[str, str]]:
    """(secret piece, replacement) of a URL target: userinfo, path, query, fragment."""
    shown = redact_target(kind, target)
    yield target, shown
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. a bad IPv6 literal: hide what follows the scheme
        yield target.partition("://")[2], REDACTED
        return
    yield f"{parts.scheme}://{parts.netloc}{parts.path}", shown
    userinfo = parts.netloc.rpartition("@")[0]
    yield userinfo, REDACTED
    yield userinfo.partition(":")[2], REDACTED
    path = parts.path
    if parts.hostname == "hooks.slack.com" and path.startswith("/services/"):
        # /services/T000/B000/secret: the workspace id is shown, the rest is secret
        path = path.removeprefix("/services/").partition("/")[2]
    if path.strip("/"):
        yield path, REDACTED
        yield from ((seg, REDACTED) for seg in path.split("/") if len(seg) >= _MIN_URL_PIECE)
    yield parts.query, REDACTED
    yield from ((value, REDACTED) for _, value in parse_qsl(parts.query) if len(value) >= _MIN_URL_PIECE)
    yield parts.fragment, REDACTED


def _pieces(channel: NotificationChannel, extra: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    raw: list[tuple[str, str]] = []
    if channel.type == "email":
        raw.append((channel.target, redact_target("email", channel.target)))
        raw.append((channel.target.partition("@")[0], REDACTED))
    else:
        raw.extend(_url_pieces(channel.type, channel.target))
    for key, value in channel.metadata.items():
        if key.lower() in SECRET_METADATA_KEYS:
            raw.append((value, REDACTED))
            raw.extend((word, REDACTED) for word in value.split() if len(word) >= 4)  # "Bearer <token>"
    raw.extend((secret, REDACTED) for secret in extra)
    for piece, replacement in raw:
        for variant in (piece, unquote(piece), quote(piece, safe=""), quote(piece, safe="/:@")):
            if variant.strip() and variant not in found:
                found[variant] = replacement
    return found


def redact(text: str, channel: NotificationChannel, *, extra: Iterable[str] = ()) -> str:
    """``text`` with every secret of ``channel`` removed: the target URL's path, query,
    fragment and credentials (the URL itself shown as :func:`redact_target` does), the
    e-mail address and its local part, secret metadata values (``auth_header``,
    ``secret``, ``token``, ...) and the strings in ``extra`` (an SMTP password)."""
    pieces = _pieces(channel, extra)
    if not pieces or not text:
        return text
    alternatives = []
    for piece in sorted(pieces, key=len, reverse=True):
        escaped = re.escape(piece)
        alternatives.append(escaped if len(piece) >= _ANYWHERE else rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])")
    pattern = re.compile("|".join(alternatives))
    return pattern.sub(lambda match: pieces[match.group(0)], text)


# -- picking a sender -------------------------------------------------------------------
def sender_for(channel_type: str, config: Config) -> Sender:
    """The sender of ``channel_type`` (``email``, ``slack`` or ``webhook``)."""
    if channel_type == "email":
        from .email import EmailSender

        return EmailSender(config)
    if channel_type == "slack":
        from .slack import SlackSender

        return SlackSender(policy=config.outbound_policy())
    if channel_type == "webhook":
        from .webhook import WebhookSender

        return WebhookSender(policy=config.outbound_policy())
    raise ValidationError("notifications.type", channel_type, f"must be one of {', '.join(CHANNEL_TYPES)}")


def close_sender(sender: Sender) -> None:
    """Release what a sender holds (its HTTP client), if it holds anything."""
    close = getattr(sender, "close", None)
    if callable(close):
        close()


# -- test notifications ------------------------------------------------------------------
TEST_MESSAGE = (
    "This is a TEST notification from jobbudget: the numbers are made up and no budget changed. "
    "If you can read this, the channel works."
)


def make_test_event(*, now: datetime | None = None) -> AlertEvent:
    """A clearly labelled test event (type ``test``, made-up numbers, a fresh id)."""
    moment = now or datetime.now(UTC)
    start = date(moment.year, moment.month, 1)
    end = date(moment.year, moment.month, calendar.monthrange(moment.year, moment.month)[1])
    return AlertEvent(
        id=f"test-{uuid.uuid4()}",
        type="test",
        budget_id="test-budget",
        tenant_id="jobbudget-test",
        queue_name="example-queue",
        period_start=start,
        period_end=end,
        occurred_at=moment,
        current_spend=Decimal("850.00"),
        budget_amount=Decimal("1000.00"),
        utilization=Decimal("0.85"),
        currency="USD",
        forecast_spend=Decimal("1120.00"),
        message=TEST_MESSAGE,
    )


def send_test(channel: NotificationChannel, config: Config, *, now: datetime | None = None) -> None:
    """Send a test event through ``channel``; raises :class:`DeliveryError` if it fails."""
    sender = sender_for(channel.type, config)
    try:
        sender.send(channel, [make_test_event(now=now)])
    finally:
        close_sender(sender)
    log.info("test notification sent to %s %s", channel.type, redact_target(channel.type, channel.target))
