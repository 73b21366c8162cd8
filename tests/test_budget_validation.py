"""Budget validation and redaction of notification secrets."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobbudget import Budget, BudgetPeriod, EnforcementPolicy, NotificationChannel, ValidationError, validate_budget
from jobbudget.domain.budget import redact_target
from jobbudget.domain.codec import budget_from_mapping

PERIOD = BudgetPeriod("monthly", date(2024, 1, 1), date(2024, 1, 31))


def budget(**overrides: object) -> Budget:
    values: dict[str, object] = {"tenant_id": "acme", "amount": Decimal(100), "period": PERIOD}
    values.update(overrides)
    return Budget(**values)  # type: ignore[arg-type]


def test_a_valid_budget_passes() -> None:
    b = budget(
        queue_name="ml",
        currency="EUR",
        warning_threshold=Decimal("0.5"),
        throttle_threshold=Decimal("0.5"),
        block_threshold=Decimal("0.5"),
        notifications=[NotificationChannel(type="email", target="ops@company.com")],
        tags={"team": "ml"},
    )
    validate_budget(b)
    assert isinstance(b.notifications, tuple)
    assert b.scope == "acme/ml"
    assert budget().scope == "acme (all queues)"


def test_defaults() -> None:
    b = budget()
    validate_budget(b)
    assert b.currency == "USD"
    assert (b.warning_threshold, b.throttle_threshold, b.block_threshold) == (
        Decimal("0.75"),
        Decimal("0.90"),
        Decimal("1.00"),
    )
    assert b.enforcement_policy == EnforcementPolicy()


def test_amount_floats_and_ints_become_decimals() -> None:
    b = budget(amount=0.1, warning_threshold=0.8)
    assert b.amount == Decimal("0.1")
    assert b.warning_threshold == Decimal("0.8")
    assert budget(amount=5).amount == Decimal(5)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": Decimal(0)}, "amount"),
        ({"amount": Decimal("-0")}, "amount"),
        ({"amount": Decimal("-0.01")}, "amount"),
        ({"amount": -100}, "amount"),
        ({"amount": Decimal("1e13")}, "amount"),
        ({"amount": Decimal("0.0000000001")}, "amount"),  # finer than a nano-dollar
        ({"warning_threshold": Decimal(0)}, "warning_threshold"),
        ({"warning_threshold": Decimal("-0.5")}, "warning_threshold"),
        ({"warning_threshold": Decimal("0.95")}, "throttle_threshold"),  # warning > throttle
        ({"throttle_threshold": Decimal("0.7")}, "throttle_threshold"),  # throttle < warning
        ({"throttle_threshold": Decimal("1.1")}, "block_threshold"),  # throttle > block
        ({"block_threshold": Decimal("0.8")}, "block_threshold"),
        ({"block_threshold": Decimal("11")}, "block_threshold"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"currency": None}, "currency"),
        ({"tenant_id": ""}, "tenant_id"),
        ({"tenant_id": "t" * 51}, "tenant_id"),
        ({"tenant_id": "bad\nid"}, "tenant_id"),
        ({"queue_name": "q" * 101}, "queue_name"),
        ({"period": "monthly"}, "period"),
        ({"enforcement_policy": {"warn_only": True}}, "enforcement_policy"),
        ({"notifications": ["ops@company.com"]}, "notifications"),
        ({"tags": {"k": 1}}, "tags"),
        ({"tags": {"k" * 101: "v"}}, "tags"),
        ({"active": "yes"}, "active"),
    ],
)
def test_validate_budget_names_the_wrong_field(overrides: dict[str, object], field: str) -> None:
    b = budget(**overrides)
    with pytest.raises(ValidationError) as info:
        validate_budget(b)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_thresholds_boundaries() -> None:
    validate_budget(budget(warning_threshold=Decimal("0.000001")))
    validate_budget(budget(block_threshold=Decimal(10), throttle_threshold=Decimal(10), warning_threshold=Decimal(10)))
    validate_budget(budget(amount=Decimal("1e9")))
    with pytest.raises(ValidationError, match="amount"):
        validate_budget(budget(amount=Decimal("1000000000.000000001")))
    validate_budget(budget(amount=Decimal("0.000000001")))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "100", None, True, Decimal("NaN")], ids=repr)
def test_non_numbers_are_rejected_when_the_budget_is_built(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        budget(amount=bad)
    assert info.value.field == "amount"
    with pytest.raises(ValidationError) as info:
        budget(throttle_threshold=bad)
    assert info.value.field == "throttle_threshold"


@pytest.mark.parametrize(
    ("period_kwargs", "field"),
    [
        ({"type": "fortnightly"}, "period.type"),
        ({"type": "monthly", "start_date": date(2024, 2, 1), "end_date": date(2024, 1, 1)}, "period.end_date"),
        ({"type": "custom", "start_date": date(2024, 2, 1), "end_date": date(2024, 1, 31)}, "period.end_date"),
        ({"timezone": "Nowhere/City"}, "period.timezone"),
    ],
)
def test_bad_periods_are_rejected(period_kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        budget(period=BudgetPeriod(**period_kwargs))  # type: ignore[arg-type]
    assert info.value.field == field
    # and through the JSON codec that the adapters use
    mapping = {
        "tenant_id": "acme",
        "amount": "100",
        "period": {k: v.isoformat() if isinstance(v, date) else v for k, v in period_kwargs.items()},
    }
    with pytest.raises(ValidationError) as info:
        budget_from_mapping(mapping)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"throttle_factor": 0}, "enforcement_policy.throttle_factor"),
        ({"throttle_factor": 0.0}, "enforcement_policy.throttle_factor"),
        ({"throttle_factor": -0.5}, "enforcement_policy.throttle_factor"),
        ({"throttle_factor": 1.0000001}, "enforcement_policy.throttle_factor"),
        ({"throttle_factor": 2}, "enforcement_policy.throttle_factor"),
        ({"throttle_factor": float("nan")}, "enforcement_policy.throttle_factor"),
        ({"throttle_factor": True}, "enforcement_policy.throttle_factor"),
        ({"throttle_factor": "0.5"}, "enforcement_policy.throttle_factor"),
        ({"warn_only": 1}, "enforcement_policy.warn_only"),
        ({"block_new_jobs": "no"}, "enforcement_policy.block_new_jobs"),
        ({"allow_emergency": None}, "enforcement_policy.allow_emergency"),
        ({"emergency_priority": 11}, "enforcement_policy.emergency_priority"),
        ({"emergency_priority": -1}, "enforcement_policy.emergency_priority"),
        ({"emergency_priority": True}, "enforcement_policy.emergency_priority"),
        ({"grace_period_hours": -1}, "enforcement_policy.grace_period_hours"),
        ({"grace_period_hours": 1.5}, "enforcement_policy.grace_period_hours"),
        ({"grace_period_hours": 24 * 366 + 1}, "enforcement_policy.grace_period_hours"),
    ],
)
def test_enforcement_policy_rejects_bad_values(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        EnforcementPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize("factor", [1, 1.0, Decimal("0.000001"), 0.25, Decimal("0.5")])
def test_throttle_factor_in_range(factor: object) -> None:
    policy = EnforcementPolicy(throttle_factor=factor)  # type: ignore[arg-type]
    assert isinstance(policy.throttle_factor, float)
    assert policy.throttle_factor == float(factor)  # type: ignore[arg-type]


# --- notification channels ---


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "sms", "target": "+15550100"}, "notifications.type"),
        ({"type": "email", "target": ""}, "notifications.target"),
        ({"type": "email", "target": "not-an-address"}, "notifications.target"),
        ({"type": "email", "target": "a b@example.com"}, "notifications.target"),
        ({"type": "slack", "target": "hooks.slack.com/services/x"}, "notifications.target"),
        ({"type": "webhook", "target": "ftp://example.com/hook"}, "notifications.target"),
        ({"type": "webhook", "target": "https://x.example/" + "a" * 2048}, "notifications.target"),
        ({"type": "email", "target": "o@x.com", "events": ("warning", "explode")}, "notifications.events"),
        ({"type": "email", "target": "o@x.com", "enabled": "true"}, "notifications.enabled"),
        ({"type": "email", "target": "o@x.com", "metadata": {"k": 1}}, "notifications.metadata"),
    ],
)
def test_channel_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        NotificationChannel(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_channel_errors_do_not_echo_the_secret_target() -> None:
    with pytest.raises(ValidationError) as info:
        NotificationChannel(type="webhook", target="ftp://user:hunter2@example.com/SECRETPATH")
    assert "hunter2" not in str(info.value)
    assert "SECRETPATH" not in str(info.value)


def test_redacted_email_and_slack_examples() -> None:
    email = NotificationChannel(type="email", target="ops@company.com").redacted()
    assert email.target == "o***@company.com"
    slack = NotificationChannel(
        type="slack", target="https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", events=("block",)
    ).redacted()
    assert slack.target == "https://hooks.slack.com/services/T000/****"
    assert slack.type == "slack"
    assert slack.events == ("block",)
    assert slack.enabled is True


def test_redacted_metadata_masks_only_secrets() -> None:
    channel = NotificationChannel(
        type="webhook",
        target="https://example.com/hook",
        metadata={"auth_header": "Bearer abc123", "Token": "t0k3n", "API_KEY": "k3y", "format": "json"},
    )
    red = channel.redacted()
    assert red.metadata == {"auth_header": "***", "Token": "***", "API_KEY": "***", "format": "json"}
    assert channel.metadata["auth_header"] == "Bearer abc123"  # the original is untouched
    for secret in ("abc123", "t0k3n", "k3y"):
        assert secret not in repr(red)


def test_redact_target_removes_credentials_query_and_fragment() -> None:
    assert redact_target("webhook", "https://user:hunter2@example.com/a/b") == "https://example.com/***"
    assert redact_target("webhook", "https://example.com:8443/hook") == "https://example.com:8443/***"
    assert "s3cr3t" not in redact_target("webhook", "https://api.example.com?token=s3cr3t")
    assert "s3cr3t" not in redact_target("webhook", "https://api.example.com#s3cr3t")
    assert redact_target("webhook", "not a url") == "***"
    assert redact_target("email", "no-at-sign") == "***"


local_parts = st.lists(  # RFC 5322 dot-atoms: no leading, trailing or doubled dots
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_%+-", min_size=1, max_size=10),
    min_size=1,
    max_size=3,
).map(".".join)
tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=24)


@settings(max_examples=80, deadline=None)
@given(local=local_parts, domain=st.sampled_from(["example.org", "mail.example.net"]))
def test_redacted_email_never_contains_the_local_part(local: str, domain: str) -> None:
    red = NotificationChannel(type="email", target=f"{local}@{domain}").redacted()
    shown_local, _, shown_domain = red.target.partition("@")
    assert local not in shown_local
    assert shown_domain == domain


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(["slack", "webhook"]),
    path=st.lists(tokens, min_size=0, max_size=4),
    query=st.one_of(st.none(), tokens),
    auth=tokens,
    local=local_parts,
)
def test_redacted_budget_hides_every_secret(
    kind: str, path: list[str], query: str | None, auth: str, local: str
) -> None:
    marker = "SECRET"  # every secret carries it; nothing else in a budget does
    url = "https://hooks.example.com" + "".join(f"/{marker}{p}" for p in path)
    if query is not None:
        url += f"?sig={marker}{query}"
    b = budget(
        notifications=[
            NotificationChannel(type=kind, target=url, metadata={"auth_header": f"Bearer {marker}{auth}"}),
            NotificationChannel(type="email", target=f"{marker}{local}@example.org"),
        ]
    )
    validate_budget(b)
    red = b.redacted()
    assert marker not in repr(red)
    assert red.notifications[0].target == "https://hooks.example.com/***"
    assert red.notifications[1].target == "S***@example.org"
    # the original keeps its targets and the rest of the budget is unchanged
    assert b.notifications[0].target == url
    assert replace(red, notifications=b.notifications) == b


@pytest.mark.parametrize("bad", ["a\x00b", "line\nbreak", "\ud800"])
def test_control_characters_are_rejected_in_tags_and_channels(bad: str) -> None:
    with pytest.raises(ValidationError) as tags:
        validate_budget(budget(tags={"team": bad}))
    assert tags.value.field == "tags"
    with pytest.raises(ValidationError) as channel:
        NotificationChannel(type="webhook", target="http://127.0.0.1/hook", metadata={"auth_header": bad})
    assert channel.value.field == "notifications" and bad not in str(channel.value)


@pytest.mark.parametrize(
    "name", ["=?utf-8?q?x=0D=0AReply-To:_a@evil.example?=", "ml=?", "a=?b"], ids=["encoded-word", "tail", "inside"]
)
def test_identifiers_refuse_encoded_word_syntax(name: str) -> None:
    """``=?`` starts an RFC 2047 encoded word, which e-mail headers decode (CR/LF too)."""
    with pytest.raises(ValidationError, match="encoded-word") as info:
        validate_budget(Budget(tenant_id="acme", queue_name=name, amount=Decimal(1), period=BudgetPeriod("monthly")))
    assert info.value.field == "queue_name"


@pytest.mark.parametrize(
    ("target", "metadata", "field"),
    [
        ("Ops <ops@example.com>", {}, "notifications.target"),
        ("=?utf-8?q?x?=@example.com", {}, "notifications.target"),
        ('"a b"@example.com', {}, "notifications.target"),
        ("ops@example.com", {"subject_prefix": "=?utf-8?q?x=0D=0ABcc:_b@evil.example?="}, "notifications.metadata"),
        ("ops@example.com", {"subject_prefix": "x" * 101}, "notifications.metadata"),
    ],
)
def test_email_channels_hold_only_a_plain_address_and_a_safe_prefix(
    target: str, metadata: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        channel = NotificationChannel(type="email", target=target, metadata=metadata)
        validate_budget(
            Budget(tenant_id="acme", amount=Decimal(1), period=BudgetPeriod("monthly"), notifications=(channel,))
        )
    assert info.value.field.startswith(field)
    for ok in ("ops@example.com", "first.last+tag@sub.example.co", "root@[127.0.0.1]"):
        validate_budget(
            Budget(
                tenant_id="acme",
                amount=Decimal(1),
                period=BudgetPeriod("monthly"),
                notifications=(NotificationChannel(type="email", target=ok),),
            )
        )
