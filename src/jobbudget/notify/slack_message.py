"""The Slack message of an alert or a digest: Block Kit blocks and a ``text`` fallback.
Pure functions, no I/O.

Tenant-controlled text (tenant and queue names, budget ids, messages) must never
become Slack markup: Slack reads ``&``, ``<`` and ``>`` as control characters in every
text object and in ``text`` ("<!channel>" would notify the whole channel), so *every*
text sent is escaped as Slack documents (``&amp;``, ``&lt;``, ``&gt;``;
https://docs.slack.dev/messaging/formatting-message-text#escaping), and ``mrkdwn``
objects are ``verbatim`` (no automatic linking of channel names or mentions).

Slack's documented limits, counted on the text as sent (after escaping):

* header block: its ``plain_text`` at most 150 characters
  (https://docs.slack.dev/reference/block-kit/blocks/header-block);
* section block: ``text`` at most 3,000 characters, at most 10 ``fields`` of at most
  2,000 characters each (https://docs.slack.dev/reference/block-kit/blocks/section-block);
* context block: at most 10 elements (https://docs.slack.dev/reference/block-kit/blocks/context-block),
  a text object at most 3,000 characters
  (https://docs.slack.dev/reference/block-kit/composition-objects/text-object);
* at most 50 blocks a message (https://docs.slack.dev/block-kit);
* top-level ``text``: Slack truncates it beyond 40,000 characters and asked to keep
  messages under 4,000 (https://api.slack.com/changelog/2018-04-truncating-really-long-messages);
  we keep it under 4,000.

When a text would be too long, the tenant and queue names are shortened (ending in
"…"), never the facts: the percentage, the amounts and the period stay whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..domain.alerts import AlertEvent, describe
from .messages import checked, delivery_id, digest_headline, facts, headline, note

__all__ = [
    "CONTEXT_ELEMENTS",
    "FALLBACK_TEXT",
    "FIELD_TEXT",
    "HEADER_TEXT",
    "MAX_BLOCKS",
    "MAX_FIELDS",
    "SECTION_TEXT",
    "escape",
    "slack_payload",
]

HEADER_TEXT = 150
SECTION_TEXT = 3000
MAX_FIELDS = 10
FIELD_TEXT = 2000
CONTEXT_ELEMENTS = 10
MAX_BLOCKS = 50
FALLBACK_TEXT = 4000
#: A digest shows this many events as sections (under :data:`MAX_BLOCKS` with its
#: header, the "and N more" line and the context), then a count.
DIGEST_EVENTS = 40
_ELLIPSIS = "…"
#: Renders an event (whose names :func:`_fit` may have shortened) as raw text.
Render = Callable[[AlertEvent], str]


def escape(text: str) -> str:
    """``text`` with Slack's three control characters as HTML entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, room: int) -> str:
    """The longest start of ``text`` whose escaped form fits in ``room`` characters,
    ending in "…" when something was cut (an entity is never split)."""
    if len(escape(text)) <= room:
        return text
    kept, used = [], len(_ELLIPSIS)
    for char in text:
        width = len(escape(char))
        if used + width > room:
            break
        kept.append(char)
        used += width
    return "".join(kept) + _ELLIPSIS if room >= len(_ELLIPSIS) else ""


def _fit(render: Render, event: AlertEvent, limit: int) -> str:
    """``render(event)`` escaped, in at most ``limit`` characters: when too long, the
    tenant and queue names are shortened (both to the same length, so a short name
    stays whole) as little as needed.  The rest of the text is never cut unless it
    alone is over the limit."""
    text = escape(render(event))
    if len(text) <= limit:
        return text
    best, low, high = "", 1, max(len(escape(event.tenant_id)), len(escape(event.queue_name)))
    while low <= high:
        room = (low + high) // 2
        named = replace(event, tenant_id=_cut(event.tenant_id, room), queue_name=_cut(event.queue_name, room))
        candidate = escape(render(named))
        if len(candidate) <= limit:
            best, low = candidate, room + 1
        else:
            high = room - 1
    return best or escape(_cut(render(event), limit))


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _field(label: str) -> Render:
    def render(shown: AlertEvent) -> str:
        return f"*{label}*\n{dict(facts(shown))[label]}"

    return render


def _event_blocks(event: AlertEvent) -> list[dict[str, Any]]:
    extra = note(event)  # of the event as it is, not as shown with shorter names

    def summary(shown: AlertEvent) -> str:
        return describe(shown) + (f"\n*{extra}*" if extra else "")

    fields = [_mrkdwn(_fit(_field(label), event, FIELD_TEXT)) for label, _ in facts(event)[:MAX_FIELDS]]
    return [
        {"type": "header", "text": _plain(_fit(headline, event, HEADER_TEXT))},
        {"type": "section", "text": _mrkdwn(_fit(summary, event, SECTION_TEXT)), "fields": fields},
    ]


def _digest_line(shown: AlertEvent) -> str:
    return f"*{headline(shown)}*\n{describe(shown)}\n_event id `{shown.id}`_"


def _overrides(metadata: Mapping[str, str]) -> dict[str, str]:
    found = {k.lower(): v.strip() for k, v in metadata.items() if v.strip()}
    extra: dict[str, str] = {}
    for key in ("channel", "username"):
        if key in found:
            extra[key] = found[key]
    icon = found.get("icon")
    if icon and icon.startswith(("https://", "http://")):
        extra["icon_url"] = icon
    elif icon:
        extra["icon_emoji"] = icon if icon.startswith(":") and icon.endswith(":") else f":{icon.strip(':')}:"
    return extra


def slack_payload(
    events: Sequence[AlertEvent], *, digest: bool = False, metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A Slack incoming-webhook payload: Block Kit blocks, a ``text`` fallback and the
    ``channel``, ``username`` and ``icon`` (``icon_emoji`` or ``icon_url``) metadata."""
    checked(events, digest)
    key = delivery_id(events, digest=digest)
    blocks: list[dict[str, Any]]
    if not digest:
        event = events[0]
        blocks = _event_blocks(event)
        label = "TEST notification from jobbudget: " if event.type == "test" else ""
        fallback = _fit(lambda shown: label + describe(shown), event, FALLBACK_TEXT)
        context = f"event id `{event.id}` · budget `{event.budget_id}`"
    else:
        title = digest_headline(events)
        blocks = [{"type": "header", "text": _plain(_cut(title, HEADER_TEXT))}]
        blocks += [_section(_fit(_digest_line, event, SECTION_TEXT)) for event in events[:DIGEST_EVENTS]]
        if len(events) > DIGEST_EVENTS:
            blocks.append(_section(f"… and {len(events) - DIGEST_EVENTS} more"))
        listed = events[:10]
        room = (FALLBACK_TEXT - len(title) - len(": ; …")) // len(listed) - len("; ")  # "title: a; b; …"
        fallback = escape(f"{title}: ") + "; ".join(_fit(headline, e, room) for e in listed)
        fallback += "; …" if len(events) > len(listed) else ""
        context = f"digest id `{key}` · event ids: " + ", ".join(f"`{e.id}`" for e in listed)
    blocks.append({"type": "context", "elements": [_mrkdwn(escape(_cut(context, SECTION_TEXT)))]})
    return {"text": fallback, "blocks": blocks, **_overrides(metadata or {})}
