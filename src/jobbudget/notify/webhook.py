"""Signed JSON webhooks over HTTP (httpx), and the HTTP plumbing Slack shares.

A webhook POST carries the body of :mod:`jobbudget.notify.messages` (schema
``jobbudget.alert/v1`` or ``jobbudget.digest/v1``) and the headers
``Content-Type: application/json``, ``User-Agent: jobbudget/<version>``, the Standard
Webhooks headers ``webhook-id`` (the event id, the digest id for a digest: the same on
every retry) and ``webhook-timestamp`` (Unix seconds of this attempt), with metadata
``secret`` also ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
(see :mod:`jobbudget.domain.signing`), and ``Authorization`` (metadata ``auth_header``)
when set.  Deprecated, kept for existing receivers: ``X-JobBudget-Event-Id`` (= ``webhook-id``)
and, for a secret not in the ``whsec_`` form, ``X-JobBudget-Signature: sha256=<hex
HMAC-SHA256 of the raw body>``.  See ``docs/webhooks.md``.

Answers: 2xx is delivered; 429, 5xx, timeouts and connection errors are retryable
(``Retry-After`` in seconds or as an HTTP date is passed on as ``retry_after``); any
other status (3xx, 4xx) is permanent.  Redirects are not followed.  Connections are
made only to addresses the outbound policy allows (:mod:`.transport`); a refused
target is a permanent :class:`~.base.TargetNotAllowedError`.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Self

import httpx

from ..domain.alerts import AlertEvent
from ..domain.budget import NotificationChannel, redact_target
from ..domain.outbound import OutboundPolicy
from ..domain.signing import is_standard_secret, legacy_signature, sign, signing_key
from .base import DeliveryError, TargetNotAllowedError, metadata_value, redact, timeout_of
from .messages import delivery_id, encode_json, webhook_body
from .transport import CheckedTransport, Resolver, system_resolver

__all__ = ["HttpSender", "WebhookSender", "parse_retry_after", "user_agent"]

log = logging.getLogger("jobbudget.notify.http")

#: A receiver asking for more than a day is capped at a day.
MAX_RETRY_AFTER = 86400.0
_SECONDS = re.compile(r"^\d+(\.\d+)?$")
_SNIPPET = 200
#: The channel being posted to, so the log filter below can redact httpx's own lines.
_SENDING: contextvars.ContextVar[NotificationChannel | None] = contextvars.ContextVar("jobbudget_sending", default=None)


class _RedactWhileSending(logging.Filter):
    """httpx logs every request URL at INFO; a webhook URL holds a token.  While a
    sender posts, records of the HTTP libraries are redacted for that channel."""

    def filter(self, record: logging.LogRecord) -> bool:
        channel = _SENDING.get()
        if channel is not None:
            text = record.getMessage()
            clean = redact(text, channel)
            if clean != text:
                record.msg, record.args = clean, None
        return True


@functools.cache
def _install_log_filter() -> None:
    shared = _RedactWhileSending()
    for name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"):
        logging.getLogger(name).addFilter(shared)


@functools.cache
def user_agent() -> str:
    """``jobbudget/<version>``."""
    try:
        return f"jobbudget/{version('jobbudget')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "jobbudget/0"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _SECONDS.match(text):
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(wait, 0.0), MAX_RETRY_AFTER)


def _header_ok(value: str) -> bool:
    return all(32 <= ord(ch) < 127 or ch == "\t" for ch in value)


def _cert_problem(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class HttpSender:
    """POSTs JSON to a channel's URL with a shared :class:`httpx.Client` (thread-safe)
    that connects only where ``policy`` allows (default: public addresses only);
    ``resolver`` replaces the system's DNS lookup (tests)."""

    kind = "HTTP endpoint"

    def __init__(self, *, policy: OutboundPolicy | None = None, resolver: Resolver = system_resolver) -> None:
        transport = CheckedTransport(policy or OutboundPolicy(), resolver=resolver)
        self._client = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
        _install_log_filter()

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _sending(self, channel: NotificationChannel) -> Iterator[None]:
        token = _SENDING.set(channel)
        try:
            yield
        finally:
            _SENDING.reset(token)

    def post(self, channel: NotificationChannel, body: bytes, *, key: str, headers: Mapping[str, str]) -> None:
        """POST ``body`` to ``channel.target``; raises :class:`DeliveryError` unless 2xx."""
        timeout = timeout_of(channel)
        shown = f"{self.kind} {redact_target(channel.type, channel.target)}"
        for name, value in headers.items():
            if not _header_ok(value):
                raise DeliveryError(
                    f"{shown}: the {name} header (from the channel metadata) must be printable ASCII", retryable=False
                )
        log.debug("POST %s (%s, %d bytes, timeout %gs)", shown, key, len(body), timeout)
        try:
            with (
                self._sending(channel),
                self._client.stream(
                    "POST", channel.target, content=body, headers=dict(headers), timeout=timeout
                ) as response,
            ):
                status = response.status_code
                if 200 <= status < 300:
                    log.debug("%s accepted %s (HTTP %d)", shown, key, status)
                    return
                snippet = redact(self._snippet(response), channel)[:_SNIPPET]  # redact, then cut
                retry_after = parse_retry_after(response.headers.get("retry-after"))
        except TargetNotAllowedError as exc:
            raise self._error(channel, f"{shown}: {exc.message}", retryable=False, refused=True) from None
        except httpx.TimeoutException:
            raise self._error(channel, f"{shown} did not answer within {timeout:g}s", retryable=True) from None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            raise self._error(channel, f"{shown}: cannot send the request ({exc})", retryable=False) from None
        except httpx.TransportError as exc:
            if _cert_problem(exc):
                raise self._error(channel, f"{shown}: TLS certificate not trusted", retryable=False) from None
            reason = str(exc) or type(exc).__name__
            raise self._error(channel, f"{shown}: connection failed ({reason})", retryable=True) from None
        retryable = status == 429 or status >= 500
        wait = f", retry after {retry_after:g}s" if retryable and retry_after is not None else ""
        message = f"{shown} answered HTTP {status}{wait}" + (f": {snippet}" if snippet else "")
        raise self._error(
            channel, message, retryable=retryable, status=status, retry_after=retry_after if retryable else None
        )

    @staticmethod
    def _snippet(response: httpx.Response) -> str:
        data = b""
        try:
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) >= 16 * _SNIPPET:
                    break
        except httpx.HTTPError:
            pass
        text = " ".join(data[: 16 * _SNIPPET].decode("utf-8", "replace").split())
        return text

    def _error(
        self,
        channel: NotificationChannel,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        refused: bool = False,
    ) -> DeliveryError:
        clean = redact(message, channel)
        error = (
            TargetNotAllowedError(clean)
            if refused
            else DeliveryError(clean, retryable=retryable, status=status, retry_after=retry_after)
        )
        log.debug("delivery failed (%s): %s", "retryable" if retryable else "permanent", error.message)
        return error


class WebhookSender(HttpSender):
    """Sends ``jobbudget.alert/v1`` (or digest) JSON bodies with the Standard Webhooks
    headers, signed when the channel has a ``secret``.  ``wall_clock`` gives the Unix
    time of each attempt (``webhook-timestamp``; receivers compare it with their clock)."""

    kind = "webhook"

    def __init__(
        self,
        *,
        policy: OutboundPolicy | None = None,
        resolver: Resolver = system_resolver,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(policy=policy, resolver=resolver)
        self._wall_clock = wall_clock

    def send(self, channel: NotificationChannel, events: Sequence[AlertEvent], *, digest: bool = False) -> None:
        """POST one alert (or one digest) to ``channel.target``."""
        body = encode_json(webhook_body(events, digest=digest))
        key = delivery_id(events, digest=digest)
        timestamp = int(self._wall_clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": user_agent(),
            "webhook-id": key,
            "webhook-timestamp": str(timestamp),
            "X-JobBudget-Event-Id": key,  # deprecated: the same as webhook-id
        }
        auth = metadata_value(channel, "auth_header")
        if auth:
            headers["Authorization"] = auth
        secret = metadata_value(channel, "secret")
        if secret:
            try:
                headers["webhook-signature"] = sign(signing_key(secret), key, timestamp, body)
            except ValueError as exc:  # a bad whsec_ secret (ValidationError), an id the spec does not allow
                shown = f"{self.kind} {redact_target(channel.type, channel.target)}"
                raise self._error(channel, f"{shown}: {exc}", retryable=False) from None
            if not is_standard_secret(secret):
                headers["X-JobBudget-Signature"] = legacy_signature(secret, body)  # deprecated
        self.post(channel, body, key=key, headers=headers)
