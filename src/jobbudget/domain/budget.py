"""Budgets, their enforcement policy and notification channels, and validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .currencies import CURRENCIES
from .errors import ValidationError
from .money import canonical, to_decimal
from .periods import BudgetPeriod
from .resources import check_labels, labels_text
from .signing import signing_key
from .validation import MAX_QUEUE_LEN, MAX_TENANT_LEN, check_identifier, check_non_negative

__all__ = [
    "EVENT_TYPES",
    "CHANNEL_TYPES",
    "Budget",
    "EnforcementPolicy",
    "NotificationChannel",
    "parse_channel_spec",
    "redact_target",
    "validate_budget",
    "validate_channel",
]

EVENT_TYPES = ("warning", "throttle", "block", "forecast_overrun", "reset", "bypass")
CHANNEL_TYPES = ("email", "slack", "webhook")
#: A billion dollars per budget period: every amount and sum fits both databases
#: (SQLite keeps money as 64-bit nano-dollars, at most about 9.2e9 dollars).
MAX_AMOUNT = Decimal("1e9")
#: Metadata keys whose values are secrets and never shown unredacted.
SECRET_METADATA_KEYS = frozenset({"auth_header", "token", "secret", "password", "api_key"})
REDACTED = "***"
#: An e-mail address as a channel target: RFC 5322's dot-atom local part at a domain
#: name or an address literal; no display name, comment or quoted local part.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])$"
)
#: Rollover modes of :attr:`EnforcementPolicy.carry_over`.
CARRY_MODES = ("none", "unused", "overage", "both")
#: Who may set a budget: the operator's are caps a tenant key cannot loosen.
#: ``team``: set with the key of a team or organisation above the budget's tenant, a
#: cap that tenant cannot change or remove either.
OWNERS = ("operator", "tenant", "team")


def _decimal(field_name: str, value: Any) -> Decimal:
    try:
        return to_decimal(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field_name, value, f"must be a finite number ({exc})") from None


def _canonical(field_name: str, value: Any) -> Decimal:
    number = _decimal(field_name, value)
    return canonical(number) if number.is_finite() and abs(number.adjusted()) < 100 else number


@dataclass(frozen=True, slots=True, kw_only=True)
class EnforcementPolicy:
    """How a budget reacts once its thresholds are crossed."""

    warn_only: bool = False
    throttle_factor: float = 0.5
    block_new_jobs: bool = True
    allow_emergency: bool = True
    emergency_priority: int = 9
    grace_period_hours: int = 0
    #: Emergency jobs may spend at most this fraction of the amount past the block
    #: threshold in a period; beyond it they are throttled or blocked like any job.
    max_bypass_fraction: Decimal = Decimal("0.1")
    #: rollover of a recurring budget: the previous period's ``unused`` amount, its
    #: ``overage``, ``both`` or ``none`` carried into the next period, at most
    #: ``carry_over_cap`` × the amount either way
    carry_over: str = "none"
    carry_over_cap: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        for name in ("warn_only", "block_new_jobs", "allow_emergency"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"enforcement_policy.{name}", getattr(self, name), "must be true or false")
        factor = check_non_negative("enforcement_policy.throttle_factor", self.throttle_factor, maximum=Decimal(1))
        if factor == 0:
            raise ValidationError("enforcement_policy.throttle_factor", self.throttle_factor, "must be in (0, 1]")
        object.__setattr__(self, "throttle_factor", float(factor))
        fraction = check_non_negative(
            "enforcement_policy.max_bypass_fraction", self.max_bypass_fraction, maximum=Decimal(1)
        )
        object.__setattr__(self, "max_bypass_fraction", fraction)
        if self.carry_over not in CARRY_MODES:
            raise ValidationError(
                "enforcement_policy.carry_over", self.carry_over, f"must be one of {', '.join(CARRY_MODES)}"
            )
        cap = check_non_negative("enforcement_policy.carry_over_cap", self.carry_over_cap, maximum=Decimal(10))
        object.__setattr__(self, "carry_over_cap", cap)
        for name, high in (("emergency_priority", 10), ("grace_period_hours", 24 * 366)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                raise ValidationError(f"enforcement_policy.{name}", value, f"must be a whole number from 0 to {high}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationChannel:
    """Where alerts go: e-mail address, Slack incoming-webhook URL or webhook URL."""

    type: str
    target: str
    events: tuple[str, ...] = ("warning", "throttle", "block")
    enabled: bool = True
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in CHANNEL_TYPES:
            raise ValidationError("notifications.type", self.type, f"must be one of {', '.join(CHANNEL_TYPES)}")
        if not isinstance(self.target, str) or not self.target or len(self.target) > 2048:
            raise ValidationError(
                "notifications.target", redact_target(self.type, str(self.target)), "must be a non-empty string"
            )
        if self.type == "email" and ("@" not in self.target or " " in self.target.strip()):
            raise ValidationError(
                "notifications.target", redact_target("email", self.target), "must be an e-mail address"
            )
        if self.type != "email" and not self.target.startswith(("https://", "http://")):
            raise ValidationError(
                "notifications.target", redact_target(self.type, self.target), "must be an http(s) URL"
            )
        events = tuple(self.events)
        for event in events:
            if event not in EVENT_TYPES:
                raise ValidationError("notifications.events", event, f"must be among {', '.join(EVENT_TYPES)}")
        object.__setattr__(self, "events", events)
        if not isinstance(self.enabled, bool):
            raise ValidationError("notifications.enabled", self.enabled, "must be true or false")
        if not isinstance(self.metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.metadata.items()
        ):
            raise ValidationError("notifications.metadata", "<metadata>", "must map strings to strings")
        texts = (self.target, *self.metadata, *self.metadata.values())
        if any(_has_control(text) for text in texts):
            raise ValidationError("notifications", "<hidden>", "must not contain control characters")

    def redacted(self) -> NotificationChannel:
        """A copy safe to show: secrets in metadata and the target are masked."""
        metadata = {k: (REDACTED if k.lower() in SECRET_METADATA_KEYS else v) for k, v in self.metadata.items()}
        return NotificationChannel(
            type=self.type,
            target=redact_target(self.type, self.target),
            events=self.events,
            enabled=self.enabled,
            metadata=metadata,
        )


def _has_control(text: str) -> bool:
    """NUL and other control characters (and lone surrogates) that no database or
    receiver should see."""
    return any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in text)


def redact_target(kind: str, target: str) -> str:
    """Mask personal data and tokens: ``o***@example.com``, ``https://example.com/***``,
    ``https://hooks.slack.com/services/T000/****`` (Slack: the workspace id is kept)."""
    if kind == "email":
        local, _, domain = target.partition("@")
        if not domain:
            return REDACTED
        return f"{local[:1]}***@{domain}" if len(local) > 1 else f"***@{domain}"  # never the whole local part
    scheme, sep, rest = target.partition("://")
    if not sep:
        return REDACTED
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    segments = rest.split("?", 1)[0].split("#", 1)[0].split("/")
    if host.lower() == "hooks.slack.com" and len(segments) > 3 and segments[1] == "services":
        team = segments[2]  # the workspace id (T...), not a secret: the rest of the path is
        if team.isascii() and team.isalnum() and len(team) <= 32:
            return f"{scheme}://{host}/services/{team}/****"
    return f"{scheme}://{host}/{REDACTED}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """A spending limit for a tenant (``queue_name=""``) or one of its queues."""

    tenant_id: str
    amount: Decimal
    period: BudgetPeriod
    queue_name: str = ""
    currency: str = "USD"
    warning_threshold: Decimal = Decimal("0.75")
    throttle_threshold: Decimal = Decimal("0.90")
    block_threshold: Decimal = Decimal("1.00")
    enforcement_policy: EnforcementPolicy = field(default_factory=EnforcementPolicy)
    notifications: tuple[NotificationChannel, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    #: the budget counts only jobs that carry every one of these labels (a project, a
    #: cost centre, a model name); empty: every job of its scope
    labels: dict[str, str] = field(default_factory=dict)
    active: bool = True
    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    created_by: str = "system"
    #: Who set the budget: ``operator`` (an admin key, the CLI, the library) or
    #: ``tenant`` (the tenant's own key).  An operator's budget is a cap the tenant
    #: cannot change or remove; a tenant may add stricter budgets of its own.
    owner: str = "operator"

    def __post_init__(self) -> None:
        # canonical digits: a budget read back from storage equals the one given
        object.__setattr__(self, "amount", _canonical("amount", self.amount))
        for name in ("warning_threshold", "throttle_threshold", "block_threshold"):
            object.__setattr__(self, name, _canonical(name, getattr(self, name)))
        object.__setattr__(self, "notifications", tuple(self.notifications))

    @property
    def scope(self) -> str:
        return f"{self.tenant_id}/{self.queue_scope}" if self.queue_name else f"{self.tenant_id} {self.queue_scope}"

    @property
    def queue_scope(self) -> str:
        """The queue (``(all queues)``) and the labels it selects: ``ml with project=llm``."""
        where = self.queue_name or "(all queues)"
        return f"{where} with {labels_text(self.labels)}" if self.labels else where

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a job with ``labels`` counts toward this budget."""
        return all(labels.get(k) == v for k, v in self.labels.items())

    def redacted(self) -> Budget:
        from dataclasses import replace

        return replace(self, notifications=tuple(c.redacted() for c in self.notifications))


def validate_budget(budget: Budget) -> None:
    """Raise :class:`ValidationError` naming the first field that is wrong."""
    check_identifier("tenant_id", budget.tenant_id, max_len=MAX_TENANT_LEN)
    check_identifier("queue_name", budget.queue_name, max_len=MAX_QUEUE_LEN, allow_empty=True)
    if not isinstance(budget.period, BudgetPeriod):
        raise ValidationError("period", budget.period, "must be a BudgetPeriod")
    if budget.amount <= 0:
        raise ValidationError("amount", budget.amount, "must be greater than 0")
    if budget.amount > MAX_AMOUNT:
        raise ValidationError("amount", budget.amount, f"must be at most {MAX_AMOUNT:,f}")
    if budget.amount.as_tuple().exponent < -9:  # type: ignore[operator]
        raise ValidationError("amount", budget.amount, "must not be finer than a nano-dollar")
    if not isinstance(budget.currency, str) or budget.currency not in CURRENCIES:
        raise ValidationError("currency", budget.currency, "must be an ISO 4217 code such as USD")
    w, t, b = budget.warning_threshold, budget.throttle_threshold, budget.block_threshold
    if not w > 0:
        raise ValidationError("warning_threshold", w, "must be greater than 0")
    if not w <= t:
        raise ValidationError("throttle_threshold", t, f"must be at least warning_threshold {w}")
    if not t <= b:
        raise ValidationError("block_threshold", b, f"must be at least throttle_threshold {t}")
    if b > 10:
        raise ValidationError("block_threshold", b, "must be at most 10 (1000%)")
    if not isinstance(budget.enforcement_policy, EnforcementPolicy):
        raise ValidationError("enforcement_policy", budget.enforcement_policy, "must be an EnforcementPolicy")
    for channel in budget.notifications:
        if not isinstance(channel, NotificationChannel):
            raise ValidationError("notifications", channel, "must be NotificationChannel objects")
        validate_channel(channel)
    if not isinstance(budget.tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 100 and len(v) <= 500 for k, v in budget.tags.items()
    ):
        raise ValidationError("tags", budget.tags, "must map short strings to strings")
    if any(_has_control(text) for pair in budget.tags.items() for text in pair):
        raise ValidationError("tags", budget.tags, "must not contain control characters")
    check_labels("labels", budget.labels)
    if not isinstance(budget.active, bool):
        raise ValidationError("active", budget.active, "must be true or false")
    if budget.owner not in OWNERS:
        raise ValidationError("owner", budget.owner, f"must be one of {', '.join(OWNERS)}")


def plain_address(text: str) -> bool:
    """Whether ``text`` is a plain ``local@domain`` e-mail address (see ``_ADDRESS``)."""
    return _ADDRESS.match(text) is not None and "=?" not in text


def validate_channel(channel: NotificationChannel) -> None:
    """What a channel needs beyond its shape: a webhook's signing ``secret`` must be
    usable (a ``whsec_`` secret is base64 of 24 to 64 bytes; see :mod:`.signing`); an
    e-mail channel's address is a plain ``local@domain`` and its ``subject_prefix`` a
    short line with no encoded words (both end up in mail headers)."""
    if channel.type == "webhook":
        for key, value in channel.metadata.items():
            if key.lower() == "secret" and value:
                signing_key(value)
    if channel.type == "email":
        if not plain_address(channel.target):
            raise ValidationError(
                "notifications.target",
                redact_target("email", channel.target),
                "must be a plain e-mail address such as ops@example.com",
            )
        prefix = channel.metadata.get("subject_prefix")
        if prefix is not None and (len(prefix) > 100 or "=?" in prefix or not prefix.isprintable()):
            raise ValidationError(
                "notifications.metadata.subject_prefix",
                prefix[:100],
                "must be one printable line of at most 100 characters, without '=?'",
            )


def parse_channel_spec(spec: str, *, field: str = "notify") -> NotificationChannel:
    """A channel from ``TYPE:TARGET`` (``email:ops@example.com``, ``slack:URL``,
    ``webhook:URL``), as typed on the command line or in the terminal UI.  The error
    never repeats the target (it may hold a token)."""
    kind, sep, target = spec.strip().partition(":")
    if not sep or not target.strip():
        raise ValidationError(field, kind + ":...", "must be TYPE:TARGET such as email:ops@example.com")
    return NotificationChannel(type=kind.strip().lower(), target=target.strip())
