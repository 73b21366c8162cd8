"""What alert messages say: e-mail (subject, plain text, HTML) and the webhook JSON body
(Slack's Block Kit message is in :mod:`.slack_message`).  Pure functions, no I/O.

Money is exact for machines and rounded for people: the JSON body carries plain
decimal strings (:func:`jobbudget.domain.money.plain`, never ``0E-9``), texts show
``1,234.56 USD`` (:func:`jobbudget.domain.money.display_money`).

Webhook body, schema version 1 (also in ``docs/webhooks.md``)::

    {
      "schema": "jobbudget.alert/v1",
      "id": "9b2f...",               # the event id: every delivery of the event carries it
      "type": "block",               # warning | throttle | block | forecast_overrun | reset | bypass | test
      "tenant_id": "acme",
      "queue_name": "ml",            # "" for a tenant-wide budget
      "budget_id": "b-123",
      "current_spend": "5115.00",    # money and ratios are exact decimal strings
      "budget_amount": "5000.00",
      "utilization": "1.023",        # spend / amount (1.023 = 102.3%)
      "currency": "USD",
      "forecast_spend": "5800.00",   # or null
      "period_start": "2024-01-01",  # ISO-8601 dates, inclusive
      "period_end": "2024-01-31",
      "occurred_at": "2024-01-15T12:00:00+00:00",
      "message": "budget block for acme/ml: ..."
    }

A digest (several events held back by the rate limit, sent as one message)::

    {"schema": "jobbudget.digest/v1", "id": "<digest id>", "events": [<alert bodies>]}

The digest id is the hex SHA-256 of the sorted event ids joined by newlines (UTF-8),
so the same held-back events always make the same digest id.  New fields may be added
to a version; removing or changing one makes a new version.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..domain.alerts import AlertEvent, describe
from ..domain.money import display_money, plain

__all__ = [
    "ALERT_SCHEMA",
    "DEFAULT_SUBJECT_PREFIX",
    "DIGEST_SCHEMA",
    "EmailContent",
    "checked",
    "delivery_id",
    "digest_headline",
    "digest_id",
    "encode_json",
    "event_body",
    "facts",
    "headline",
    "note",
    "render_email",
    "scope",
    "webhook_body",
]

ALERT_SCHEMA = "jobbudget.alert/v1"
DIGEST_SCHEMA = "jobbudget.digest/v1"
DEFAULT_SUBJECT_PREFIX = "[jobbudget]"
_FOOTER = "Sent by jobbudget. Every delivery of an alert carries the same event id, so duplicates can be dropped."


@dataclass(frozen=True, slots=True)
class EmailContent:
    """A rendered e-mail; ``key`` is the event id (the digest id for a digest)."""

    subject: str
    text: str
    html: str
    key: str


def checked(events: Sequence[AlertEvent], digest: bool) -> Sequence[AlertEvent]:
    """``events`` if they make one message: one event, or several as a digest."""
    if not events:
        raise ValueError("no events to send")
    if not digest and len(events) != 1:
        raise ValueError(f"{len(events)} events in one message: send them one by one or as a digest")
    return events


def percent(utilization: Decimal) -> str:
    return f"{utilization * 100:.1f}%"


def scope(event: AlertEvent) -> str:
    return f"{event.tenant_id}/{event.queue_name}" if event.queue_name else f"{event.tenant_id} (all queues)"


def headline(event: AlertEvent) -> str:
    """``block: acme/ml at 102.3% of 5,000.00 USD``."""
    kind = "TEST notification" if event.type == "test" else event.type
    amount = display_money(event.budget_amount, event.currency)
    return f"{kind}: {scope(event)} at {percent(event.utilization)} of {amount}"


def digest_headline(events: Sequence[AlertEvent]) -> str:
    """``5 budget alerts held back by the rate limit``."""
    n = len(events)
    return f"{n} budget alert{'' if n == 1 else 's'} held back by the rate limit"


def digest_id(events: Sequence[AlertEvent]) -> str:
    """Hex SHA-256 of the sorted event ids joined by newlines."""
    return hashlib.sha256("\n".join(sorted(e.id for e in events)).encode()).hexdigest()


def delivery_id(events: Sequence[AlertEvent], *, digest: bool = False) -> str:
    """The id a message carries: the event id, or the digest id of a digest."""
    checked(events, digest)
    return digest_id(events) if digest else events[0].id


def note(event: AlertEvent) -> str:
    """The event's own message when it says more than :func:`describe`."""
    summary = describe(event)
    return event.message if event.message and event.message != summary else ""


def facts(event: AlertEvent) -> list[tuple[str, str]]:
    """(label, value) pairs a person reads: spend, budget, utilization, period,
    forecast (when known) and scope."""
    found = [
        ("Spend", display_money(event.current_spend, event.currency)),
        ("Budget", display_money(event.budget_amount, event.currency)),
        ("Utilization", percent(event.utilization)),
        ("Period", f"{event.period_start.isoformat()} to {event.period_end.isoformat()}"),
    ]
    if event.forecast_spend is not None:
        found.append(("Forecast", display_money(event.forecast_spend, event.currency)))
    found.append(("Scope", scope(event)))
    return found


# -- e-mail ----------------------------------------------------------------------------------
def _text_block(event: AlertEvent) -> str:
    lines = [headline(event), "", describe(event)]
    if extra := note(event):
        lines += ["", extra]
    lines.append("")
    shown = [*facts(event), ("Occurred at", event.occurred_at.isoformat()), ("Budget id", event.budget_id)]
    lines += [f"  {name + ':':<13} {value}" for name, value in shown]
    lines.append(f"  {'Event id:':<13} {event.id}")
    return "\n".join(lines)


def _html_block(event: AlertEvent) -> str:
    e = html.escape
    shown = [*facts(event), ("Occurred at", event.occurred_at.isoformat()), ("Budget id", event.budget_id)]
    rows = "".join(
        f'<tr><th align="left" style="padding-right:1em">{e(name)}</th><td>{e(value)}</td></tr>'
        for name, value in shown
    )
    extra = f"<p><strong>{e(note(event))}</strong></p>" if note(event) else ""
    return (
        f"<h2>{e(headline(event))}</h2>\n<p>{e(describe(event))}</p>\n{extra}"
        f"<table>{rows}</table>\n<p><small>Event id: <code>{e(event.id)}</code></small></p>"
    )


def render_email(
    events: Sequence[AlertEvent], *, digest: bool = False, subject_prefix: str | None = None
) -> EmailContent:
    """Subject, plain-text and HTML bodies of one e-mail (one event, or a digest)."""
    checked(events, digest)
    prefix = DEFAULT_SUBJECT_PREFIX if subject_prefix is None else subject_prefix.strip()
    key = delivery_id(events, digest=digest)
    title = digest_headline(events) if digest else headline(events[0])
    subject = " ".join(" ".join(part for part in (prefix, title) if part).split())  # one line, whatever the names
    if not digest:
        text = f"{_text_block(events[0])}\n\n-- \n{_FOOTER}\n"
        body = _html_block(events[0])
    else:
        intro = "These alerts were held back because the channel reached its hourly alert limit:"
        text = "\n\n".join([title, intro, *(_text_block(ev) for ev in events), f"Digest id: {key}\n\n-- \n{_FOOTER}\n"])
        body = f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(intro)}</p>\n" + "\n<hr>\n".join(
            _html_block(ev) for ev in events
        )
        body += f"\n<p><small>Digest id: <code>{html.escape(key)}</code></small></p>"
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(subject)}</title></head>'
        f"<body>\n{body}\n<hr>\n<p><small>{html.escape(_FOOTER)}</small></p>\n</body></html>\n"
    )
    return EmailContent(subject=subject, text=text, html=page, key=key)


# -- webhook ---------------------------------------------------------------------------------
def event_body(event: AlertEvent) -> dict[str, Any]:
    """The ``jobbudget.alert/v1`` body of one event."""
    return {
        "schema": ALERT_SCHEMA,
        "id": event.id,
        "type": event.type,
        "tenant_id": event.tenant_id,
        "queue_name": event.queue_name,
        "budget_id": event.budget_id,
        "current_spend": plain(event.current_spend),
        "budget_amount": plain(event.budget_amount),
        "utilization": plain(event.utilization),
        "currency": event.currency,
        "forecast_spend": None if event.forecast_spend is None else plain(event.forecast_spend),
        "period_start": event.period_start.isoformat(),
        "period_end": event.period_end.isoformat(),
        "occurred_at": event.occurred_at.isoformat(),
        "message": event.message or describe(event),
    }


def webhook_body(events: Sequence[AlertEvent], *, digest: bool = False) -> dict[str, Any]:
    """An alert body, or with ``digest=True`` a ``jobbudget.digest/v1`` body."""
    checked(events, digest)
    if not digest:
        return event_body(events[0])
    return {"schema": DIGEST_SCHEMA, "id": digest_id(events), "events": [event_body(e) for e in events]}


def encode_json(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
