"""E-mail alerts over SMTP (``smtplib``).

The server comes from the configuration: ``smtp_host``, ``smtp_port``, ``smtp_from``,
``smtp_user`` / ``smtp_password`` (login only when a user is set), ``smtp_starttls``
(STARTTLS after EHLO) or ``smtp_ssl`` (TLS from the start), ``smtp_timeout`` (a
channel's ``timeout`` metadata wins).  Channel metadata ``subject_prefix`` replaces
``[jobbudget]`` in the subject.

Each message is multipart/alternative (plain text + HTML) with a ``Message-ID``
derived from the event id (a resend has the same one, so mail clients thread or
drop it) and an ``X-JobBudget-Event-Id`` header.  Temporary failures (connection
refused or dropped, timeouts, 4xx replies) raise a retryable :class:`DeliveryError`;
5xx replies, failed logins and TLS verification failures a permanent one.
"""

from __future__ import annotations

import email.policy
import hashlib
import logging
import smtplib
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from ..config import Config
from ..domain.alerts import AlertEvent
from ..domain.budget import NotificationChannel, plain_address, redact_target
from .base import DeliveryError, metadata_value, redact, timeout_of
from .messages import EmailContent, render_email

__all__ = ["EmailSender", "build_message", "message_id"]

log = logging.getLogger("jobbudget.notify.email")
#: Lines up to RFC 5322's limit: folding a long header (a 64-digit digest id) puts the
#: whole value on a continuation line, which some parsers read with a leading space.
_POLICY = email.policy.SMTP.clone(max_line_length=998)


def message_id(key: str, sender_address: str) -> str:
    """A ``Message-ID`` that depends only on ``key`` (the event or digest id) and the
    sender's domain: ``<3f2a...@example.com>``."""
    domain = parseaddr(sender_address)[1].rpartition("@")[2] or "jobbudget.invalid"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]  # short: a long line would be folded
    return f"<{digest}@{domain}>"


def header_text(text: str) -> str:
    """``text`` safe as an unstructured header: one line, and no RFC 2047 encoded word
    (Python's e-mail package decodes ``=?utf-8?q?...?=`` found in a value, CR/LF
    included, and writes the result out: a header injection).  Names that reached the
    database before identifiers refused ``=?`` still cannot inject: the sequence is
    broken with a zero-width space."""
    return " ".join(text.split()).replace("=?", "=\u200b?")


def build_message(content: EmailContent, *, sender: str, recipient: str, now: datetime | None = None) -> EmailMessage:
    """The multipart/alternative message for ``content``."""
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = header_text(content.subject)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = message_id(content.key, sender)
    msg["X-JobBudget-Event-Id"] = content.key
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg.set_content(content.text)
    msg.add_alternative(content.html, subtype="html")
    return msg


class EmailSender:
    """Sends alert e-mails through the configured SMTP server, one connection a message."""

    def __init__(self, config: Config, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._config = config
        self._ssl_context = ssl_context

    def send(self, channel: NotificationChannel, events: Sequence[AlertEvent], *, digest: bool = False) -> None:
        """Send one e-mail to ``channel.target``; raises :class:`DeliveryError`."""
        cfg = self._config
        if not plain_address(channel.target):  # stored before targets were checked: never a header
            raise DeliveryError("the e-mail target is not a plain address such as ops@example.com", retryable=False)
        content = render_email(events, digest=digest, subject_prefix=metadata_value(channel, "subject_prefix"))
        timeout = timeout_of(channel) if metadata_value(channel, "timeout") else cfg.smtp_timeout
        msg = build_message(content, sender=cfg.smtp_from, recipient=channel.target)
        shown = redact_target("email", channel.target)
        log.debug("sending e-mail %s to %s via %s:%s", content.key, shown, cfg.smtp_host, cfg.smtp_port)
        try:
            self._deliver(msg, timeout)
        except Exception as exc:  # classified, and the secrets removed, below
            error = self._classify(exc, channel)
            log.debug("e-mail %s to %s failed: %s", content.key, shown, error.message)
            raise error from None
        log.debug("e-mail %s to %s sent", content.key, shown)

    def _deliver(self, msg: EmailMessage, timeout: float) -> None:
        cfg = self._config
        context = self._ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if cfg.smtp_ssl:
            smtp = smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
            if cfg.smtp_starttls and not cfg.smtp_ssl:
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.smtp_user:
                password = cfg.smtp_password.get_secret_value() if cfg.smtp_password else ""
                smtp.login(cfg.smtp_user, password)
            smtp.send_message(msg)
        except BaseException:
            smtp.close()  # no QUIT: the connection may be dead, and QUIT would wait for it
            raise
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):  # the message was accepted: that is what counts
            smtp.close()

    def _classify(self, exc: Exception, channel: NotificationChannel) -> DeliveryError:
        """A :class:`DeliveryError` saying what went wrong, without secrets."""
        cfg = self._config
        secrets = [cfg.smtp_password.get_secret_value()] if cfg.smtp_password else []
        where = f"SMTP server {cfg.smtp_host}:{cfg.smtp_port}"
        retryable: bool
        status: int | None = None
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()] or [550]
            status = codes[0]
            retryable = all(400 <= code < 500 for code in codes)
            replies = "; ".join(_reply(code, text) for code, text in exc.recipients.values())
            what = f"{where} refused the recipient: {replies}"
        elif isinstance(exc, smtplib.SMTPAuthenticationError):
            status, retryable = exc.smtp_code, False
            what = f"{where} rejected the login of {cfg.smtp_user!r}: {_reply(exc.smtp_code, exc.smtp_error)}"
        elif isinstance(exc, smtplib.SMTPResponseException):
            status, retryable = exc.smtp_code, 400 <= exc.smtp_code < 500
            what = f"{where} answered {_reply(exc.smtp_code, exc.smtp_error)}"
        elif isinstance(exc, smtplib.SMTPServerDisconnected):
            timed_out = isinstance(exc.__context__, TimeoutError)
            retryable, what = True, f"{where} {'timed out' if timed_out else 'closed the connection unexpectedly'}"
        elif isinstance(exc, smtplib.SMTPNotSupportedError):
            retryable, what = False, f"{where} does not support a required extension: {exc}"
        elif isinstance(exc, smtplib.SMTPException):
            retryable, what = False, f"{where}: {exc}"
        elif isinstance(exc, ssl.SSLCertVerificationError):
            retryable, what = False, f"{where}: TLS certificate not trusted ({exc.verify_message})"
        elif isinstance(exc, TimeoutError):
            retryable, what = True, f"{where} timed out"
        elif isinstance(exc, ConnectionRefusedError):
            retryable, what = True, f"{where} refused the connection"
        elif isinstance(exc, OSError):
            retryable, what = True, f"cannot talk to {where}: {exc.strerror or type(exc).__name__}"
        else:
            retryable, what = False, f"e-mail could not be built or sent: {type(exc).__name__}: {exc}"
        return DeliveryError(redact(what, channel, extra=secrets)[:1000], retryable=retryable, status=status)


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(message.split())}"
