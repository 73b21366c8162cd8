"""Slack messages with hostile tenant and queue names: nothing a tenant writes becomes
Slack markup, every block stays within Slack's documented limits, and the header keeps
the whole percentage and amount (names are shortened, facts never)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from jobbudget.domain.alerts import AlertEvent, describe
from jobbudget.domain.budget import NotificationChannel
from jobbudget.notify.slack import SlackSender
from jobbudget.notify.slack_message import slack_payload
from receivers import LOCAL, http_receivers

NAMES = ["<!channel>", "<@U123>", "&", "<!here|here> &amp; <#C024BE7LR>", "x" * 200, "<" * 200, "&>" * 100]
QUEUES = ["", "ml", "<!everyone>", "q" * 200, "<@U123>" * 30]
FACTS = " at 102.3% of 1,234,567.89 USD"
#: An "&" that is not one of the three entities Slack decodes.
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")


def event(**changes: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "id": "evt-0001", "type": "block", "budget_id": "b-<!subteam^S1>", "tenant_id": "acme", "queue_name": "ml",
        "period_start": date(2024, 1, 1), "period_end": date(2024, 1, 31),
        "occurred_at": datetime(2024, 1, 15, 12, 0, tzinfo=UTC), "current_spend": Decimal("1263142.567891"),
        "budget_amount": Decimal("1234567.891"), "utilization": Decimal("1.023146"),
        "forecast_spend": Decimal("1500000"),
    }  # fmt: skip
    values.update(changes)
    made = AlertEvent(**values)
    return made if "message" in changes else replace(made, message=describe(made))  # as stored events are


def texts(node: Any) -> Iterator[str]:
    """Every text Slack shows: the top-level ``text`` and each text object's ``text``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def check_limits(payload: dict[str, Any]) -> None:
    """Slack's documented limits (see jobbudget.notify.slack_message for the sources)."""
    assert len(payload["text"]) <= 4000
    assert len(payload["blocks"]) <= 50
    for block in payload["blocks"]:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
        else:
            assert block["type"] == "context" and len(block["elements"]) <= 10
            assert all(len(element["text"]) <= 3000 for element in block["elements"])


def check_escaped(payload: dict[str, Any]) -> None:
    for text in texts(payload):
        assert "<" not in text and ">" not in text, text
        assert not BARE_AMPERSAND.search(text), text
    mrkdwn = [o for b in payload["blocks"] for o in [b.get("text"), *b.get("fields", []), *b.get("elements", [])] if o]
    assert all(o["verbatim"] is True for o in mrkdwn if o["type"] == "mrkdwn")  # no auto-linked mentions


@pytest.mark.parametrize("tenant", NAMES)
@pytest.mark.parametrize("queue", QUEUES)
def test_hostile_names_are_escaped_and_cut_never_the_facts(tenant: str, queue: str) -> None:
    hostile = event(tenant_id=tenant, queue_name=queue)
    payload = slack_payload([hostile])
    check_escaped(payload)
    check_limits(payload)
    header = payload["blocks"][0]["text"]["text"]
    assert header.startswith("block: ") and header.endswith(FACTS)
    shown = html.unescape(header.removeprefix("block: ").removesuffix(FACTS))
    if queue:  # what is left of each name is the start of the real one
        shown_tenant, _, shown_queue = shown.partition("/")
        assert tenant.startswith(shown_tenant.removesuffix("…")) and queue.startswith(shown_queue.removesuffix("…"))
    section = payload["blocks"][1]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n", 1)[1] for f in section["fields"]}
    assert fields["*Spend*"] == "1,263,142.57 USD" and fields["*Budget*"] == "1,234,567.89 USD"
    assert fields["*Utilization*"] == "102.3%" and fields["*Forecast*"] == "1,500,000.00 USD"
    assert fields["*Period*"] == "2024-01-01 to 2024-01-31"
    for text in (section["text"]["text"], payload["text"]):
        assert "1,263,142.57 of 1,234,567.89 USD (102.3%) in 2024-01-01..2024-01-31; new jobs are refused" in text


@pytest.mark.parametrize("kind", ["warning", "forecast_overrun", "reset", "bypass", "test"])
def test_every_event_type_and_a_digest_stay_escaped_and_within_limits(kind: str) -> None:
    names = {"tenant_id": "<!channel>" * 5, "queue_name": "&<@U1>" * 40}
    one = slack_payload([event(type=kind, **names)])
    check_escaped(one)
    check_limits(one)
    assert one["blocks"][0]["text"]["text"].endswith(FACTS)
    held = [event(id=f"evt-{i}", type=kind, **names) for i in range(45)]
    digest = slack_payload(held, digest=True)
    check_escaped(digest)
    check_limits(digest)
    lines = [b["text"]["text"] for b in digest["blocks"][1:41]]
    assert all(FACTS.strip() in line and "(102.3%)" in line for line in lines)
    assert digest["blocks"][41]["text"]["text"] == "… and 5 more"
    assert digest["text"].count(FACTS) == 10 and digest["text"].endswith("; …")


def test_a_hostile_message_arrives_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload as a receiver gets it over HTTP (a Slack incoming-webhook stand-in)."""
    with http_receivers() as start:
        receiver = start()
        channel = NotificationChannel(type="slack", target=receiver.url("/services/T000/B000/x"))
        with SlackSender(policy=LOCAL) as sender:
            sender.send(channel, [event(tenant_id="<!channel>", queue_name="<@U123>&" * 30)])
        (got,) = receiver.requests
    payload = json.loads(got.body)
    check_escaped(payload)
    check_limits(payload)
    assert payload["text"].startswith("budget block for &lt;!channel&gt;/&lt;@U123&gt;&amp;")
    assert payload["blocks"][0]["text"]["text"].startswith("block: &lt;!channel&gt;/&lt;@U123&gt;&amp;")
