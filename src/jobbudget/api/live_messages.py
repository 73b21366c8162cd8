"""The messages of ``/v1/ws``: the authentication and the subscription a client sends
(each checked whole, size, JSON, shape and count, before anything is looked up), the
status the server pushes, and the close codes with their reasons."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import IntEnum
from typing import Any

from ..domain.codec import to_jsonable
from ..domain.errors import ValidationError
from ..domain.jsontext import loads_exact
from ..domain.validation import MAX_TENANT_LEN, check_identifier

__all__ = [
    "MAX_AUTH_BYTES",
    "MAX_BUDGETS",
    "MAX_ID_CHARS",
    "MAX_KEY_CHARS",
    "MAX_MESSAGE_BYTES",
    "Close",
    "ProtocolError",
    "StatusMessage",
    "Subscription",
    "close_reason",
    "error_message",
    "parse_auth",
    "parse_subscription",
]

#: The largest message a client may send: a subscription to MAX_BUDGETS ids fits.
MAX_MESSAGE_BYTES = 128 * 1024
#: The largest authentication message (``{"auth": "KEY"}``) and key: a key has 55 characters.
MAX_AUTH_BYTES = 1024
MAX_KEY_CHARS = 256
MAX_BUDGETS = 1000
MAX_ID_CHARS = 64
_BUDGET_ID = re.compile(rf"^[A-Za-z0-9._:-]{{1,{MAX_ID_CHARS}}}$")
_FIELDS = ("budgets", "tenant")
#: A close frame's reason is at most 123 bytes of UTF-8 (RFC 6455, 5.5).
_MAX_REASON = 123


class Close(IntEnum):
    """Close codes of ``/v1/ws`` (each close frame also carries a reason in words)."""

    BAD_MESSAGE = 4400  # the authentication or subscription is not valid (or the latter did not come in time)
    UNAUTHENTICATED = 4401  # a missing, unknown or revoked key (also once connected)
    FOREIGN_ORIGIN = 4403  # opened by a page of another site (its Origin is not this server)
    TOO_MANY_SOCKETS = 4429  # the key already has its maximum of open sockets
    TRY_AGAIN_LATER = 1013  # the key could not be checked now, or too many sockets wait for a key


def close_reason(text: str) -> str:
    """``text`` cut to fit a close frame."""
    data = text.encode("utf-8")
    if len(data) <= _MAX_REASON:
        return text
    return data[: _MAX_REASON - 3].decode("utf-8", "ignore") + "..."


def error_message(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """An ``{"type": "error"}`` message."""
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if field is not None:
        out["field"] = field
    return out


class ProtocolError(Exception):
    """A message the protocol does not allow: the socket is sent an error message and
    closed with :attr:`Close.BAD_MESSAGE` and ``reason``."""

    def __init__(self, code: str, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.field = field

    def message(self) -> dict[str, Any]:
        return error_message(self.code, self.reason, self.field)


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a client asked to follow: budget ids and/or one tenant's active budgets."""

    budgets: tuple[str, ...] = ()
    tenant: str | None = None


_SHAPE = 'send {"subscribe": {"budgets": ["BUDGET_ID", ...]}} or {"subscribe": {"tenant": "TENANT"}}'


def _json_of(message: Mapping[str, Any], what: str, limit: int) -> Any:
    """The JSON of an ASGI ``websocket.receive`` message, or ProtocolError: its kind
    and size first, then the JSON (nesting too deep included)."""
    text = message.get("text")
    if not isinstance(text, str):
        raise ProtocolError("INVALID_JSON", f"send {what} as a JSON text message, not binary")
    if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
        raise ProtocolError("PAYLOAD_TOO_LARGE", f"the message is over the limit of {limit} bytes")
    try:
        return loads_exact(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError("INVALID_JSON", f"not JSON: {exc.msg}") from None
    except ValidationError:  # the same key twice
        raise ProtocolError("INVALID_JSON", "not JSON: an object has the same key twice") from None


_AUTH_SHAPE = 'send {"auth": "KEY"} first, or the key in an Authorization: Bearer header'


def parse_auth(message: Mapping[str, Any]) -> str:
    """The API key in an authentication message (``{"auth": "KEY"}``), or
    ProtocolError.  Checked on the message alone: whether the key exists is not."""
    data = _json_of(message, "the authentication", MAX_AUTH_BYTES)
    if not isinstance(data, dict) or list(data) != ["auth"]:
        raise ProtocolError("VALIDATION_FAILED", _AUTH_SHAPE)
    key = data["auth"]
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
        raise ProtocolError("VALIDATION_FAILED", f"auth must be an API key: 1 to {MAX_KEY_CHARS} characters", "auth")
    return key


def parse_subscription(message: Mapping[str, Any]) -> Subscription:
    """The subscription in an ASGI ``websocket.receive`` message, or ProtocolError.
    Every check is on the message alone, before any lookup: its kind and size, the
    JSON (nesting too deep included), the shape, the number of ids, then each id."""
    data = _json_of(message, "the subscription", MAX_MESSAGE_BYTES)
    if not isinstance(data, dict) or list(data) != ["subscribe"]:
        raise ProtocolError("VALIDATION_FAILED", _SHAPE)
    wanted = data["subscribe"]
    if not isinstance(wanted, dict) or not wanted:
        raise ProtocolError("VALIDATION_FAILED", _SHAPE, "subscribe")
    for name in wanted:
        if name not in _FIELDS:
            raise ProtocolError("VALIDATION_FAILED", "unknown field: subscribe takes budgets and tenant", "subscribe")
    return Subscription(budgets=_budget_ids(wanted.get("budgets", [])), tenant=_tenant(wanted.get("tenant")))


def _budget_ids(budgets: Any) -> tuple[str, ...]:
    field = "subscribe.budgets"
    if not isinstance(budgets, list):
        raise ProtocolError("VALIDATION_FAILED", "subscribe.budgets must be a list of budget ids", field)
    if len(budgets) > MAX_BUDGETS:
        raise ProtocolError("VALIDATION_FAILED", f"at most {MAX_BUDGETS} budgets per socket, got {len(budgets)}", field)
    for i, budget_id in enumerate(budgets):
        if not isinstance(budget_id, str) or not _BUDGET_ID.match(budget_id):
            raise ProtocolError(
                "VALIDATION_FAILED",
                f"subscribe.budgets[{i}] is not a budget id (1 to {MAX_ID_CHARS} letters, digits or ._:-)",
                f"{field}[{i}]",
            )
    return tuple(dict.fromkeys(budgets))


def _tenant(tenant: Any) -> str | None:
    if tenant is None:
        return None
    try:
        return check_identifier("subscribe.tenant", tenant, max_len=MAX_TENANT_LEN)
    except ValidationError as exc:
        raise ProtocolError("VALIDATION_FAILED", f"subscribe.tenant {exc.reason}", "subscribe.tenant") from None


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A ``{"type": "status"}`` message: one budget's status now."""

    budget_id: str
    tenant_id: str
    queue_name: str
    current_spend: Decimal
    budget_amount: Decimal
    utilization: Decimal
    action: str
    period_start: date | None
    period_end: date | None
    forecast_spend: Decimal | None

    @property
    def change(self) -> tuple[Decimal, str, date | None]:
        """What makes a status worth pushing again: its spend, action or period."""
        return (self.current_spend, self.action, self.period_start)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "status"}
        out.update(to_jsonable(self))
        return out
