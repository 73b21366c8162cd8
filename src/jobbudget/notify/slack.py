"""Slack alerts through an incoming webhook: a Block Kit message POSTed to the
channel's ``https://hooks.slack.com/services/...`` URL.

Channel metadata ``channel`` (``#alerts``), ``username`` and ``icon`` (``:moneybag:``
becomes ``icon_emoji``, an http(s) URL ``icon_url``) are passed on; ``timeout`` as for
every channel.  Slack answers 200 ``ok``; 429 (with ``Retry-After``) and 5xx are
retryable, other errors (``invalid_token``, ``channel_not_found``, ...) permanent.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.alerts import AlertEvent
from ..domain.budget import NotificationChannel
from .messages import delivery_id, encode_json
from .slack_message import slack_payload
from .webhook import HttpSender, user_agent

__all__ = ["SlackSender"]


class SlackSender(HttpSender):
    """Posts Block Kit messages to Slack incoming webhooks."""

    kind = "Slack webhook"

    def send(self, channel: NotificationChannel, events: Sequence[AlertEvent], *, digest: bool = False) -> None:
        """POST one alert (or one digest) to the Slack incoming-webhook URL."""
        body = encode_json(slack_payload(events, digest=digest, metadata=channel.metadata))
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": user_agent()}
        self.post(channel, body, key=delivery_id(events, digest=digest), headers=headers)
