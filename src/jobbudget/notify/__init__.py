"""Alert delivery: e-mail (SMTP), Slack incoming webhooks and signed JSON webhooks.

:func:`sender_for` gives the :class:`Sender` of a channel type; a sender delivers one
message per call and raises :class:`DeliveryError` (``retryable``, ``retry_after``,
``status``) when it cannot, with a message that never contains the channel's secrets;
:class:`TargetNotAllowedError` when the target's address is one the outbound policy
refuses (:mod:`jobbudget.domain.outbound`, checked where the connection is made:
:mod:`.transport`).
Importing this package does not import httpx or smtplib: the senders load on first use.
"""

from __future__ import annotations

from .base import (
    DEFAULT_RETRY_COUNT,
    DEFAULT_TIMEOUT,
    DeliveryError,
    Sender,
    TargetNotAllowedError,
    close_sender,
    make_test_event,
    redact,
    retry_count_of,
    send_test,
    sender_for,
    timeout_of,
)

__all__ = [
    "DEFAULT_RETRY_COUNT",
    "DEFAULT_TIMEOUT",
    "DeliveryError",
    "Sender",
    "TargetNotAllowedError",
    "close_sender",
    "make_test_event",
    "redact",
    "retry_count_of",
    "send_test",
    "sender_for",
    "timeout_of",
]
