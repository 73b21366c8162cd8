"""Configuration: defaults, the design document's YAML, environment overrides, errors."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobbudget
from jobbudget import (
    Config,
    NotificationChannel,
    default_cost_model,
    production_cost_model,
    seed_cost_model,
    staging_cost_model,
)
from jobbudget.config import parse_duration

SEED_YAML = """\
# config/budget.yaml
database_url: "postgresql://user:pass@localhost/budgets"
flush_interval: "5m"
retention_days: 365
default_tenant: "default"
enable_tui: true

cost_model:
  cpu_time_weight: 0.0001
  memory_weight: 0.00001
  payload_weight: 0.00002
  redis_ops_weight: 0.000001
  network_weight: 0.01
  base_job_weight: 0.001
  environment_multiplier: 1.0

notification_channels:
  - type: "email"
    target: "ops@company.com"
    events: ["warning", "throttle", "block"]
  - type: "slack"
    target: "https://hooks.slack.com/services/..."
    events: ["throttle", "block"]
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("JOBBUDGET_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budget.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    c = Config()
    assert c.database_url == "sqlite:///jobbudget.db"
    assert c.database_schema is None
    assert c.flush_interval == timedelta(minutes=5)
    assert c.retention_days == 365
    assert c.raw_retention_days == 35
    assert c.notification_channels == []
    assert c.channels() == []
    assert c.log_level == "INFO"
    assert c.build_cost_model() == default_cost_model()


def test_seed_yaml(tmp_path: Path) -> None:
    with pytest.warns(FutureWarning) as warned:  # its default_tenant and enable_tui do nothing
        c = Config.from_yaml(write(tmp_path, SEED_YAML))
    assert len(warned) == 2
    assert c.database_url == "postgresql://user:pass@localhost/budgets"
    assert c.flush_interval == timedelta(seconds=300)
    assert c.retention_days == 365
    model = c.build_cost_model()
    assert model == seed_cost_model()  # the design document's YAML gives its example weights
    assert model.memory_weight == Decimal("0.00001")
    assert model.redis_ops_weight == Decimal("0.000001")
    assert all(isinstance(v, Decimal) for v in model.to_mapping().values())
    email, slack = c.channels()
    assert isinstance(email, NotificationChannel)
    assert (email.type, email.target, email.events) == ("email", "ops@company.com", ("warning", "throttle", "block"))
    assert (slack.type, slack.events) == ("slack", ("throttle", "block"))
    assert c.redacted_url() == "postgresql://user:***@localhost/budgets"


def test_yaml_accepts_path_as_string_and_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert Config.from_yaml(str(path)).database_url == "sqlite:///jobbudget.db"


@pytest.mark.parametrize(
    ("preset", "model"),
    [("default", default_cost_model()), ("production", production_cost_model()), ("staging", staging_cost_model())],
)
def test_cost_model_presets(tmp_path: Path, preset: str, model: object) -> None:
    assert Config.from_yaml(write(tmp_path, f"cost_model: {preset}\n")).build_cost_model() == model
    nested = Config.from_yaml(write(tmp_path, f"cost_model:\n  preset: {preset}\n  base_job_weight: 0.5\n"))
    built = nested.build_cost_model()
    assert built.base_job_weight == Decimal("0.5")
    assert built.environment_multiplier == model.environment_multiplier


# --- environment overrides ---


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBBUDGET_DATABASE_URL", "postgresql://env@db.internal/budgets")
    monkeypatch.setenv("JOBBUDGET_COST_MODEL__CPU_TIME_WEIGHT", "0.0005")
    monkeypatch.setenv("JOBBUDGET_RETENTION_DAYS", "30")
    monkeypatch.setenv("JOBBUDGET_SMTP_STARTTLS", "true")
    with pytest.warns(FutureWarning):
        c = Config.from_yaml(write(tmp_path, SEED_YAML))
    assert c.database_url == "postgresql://env@db.internal/budgets"
    assert c.retention_days == 30
    assert c.smtp_starttls is True
    model = c.build_cost_model()
    assert model.cpu_time_weight == Decimal("0.0005")
    # the file's other weights survive the nested override
    assert model.memory_weight == Decimal("0.00001")
    assert model.network_weight == Decimal("0.01")
    assert c.flush_interval == timedelta(minutes=5)
    assert len(c.channels()) == 2


def test_environment_applies_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBBUDGET_FLUSH_INTERVAL", "30s")
    monkeypatch.setenv("JOBBUDGET_COST_MODEL__PRESET", "staging")
    c = Config()
    assert c.flush_interval == timedelta(seconds=30)
    assert c.build_cost_model() == staging_cost_model()


def test_environment_weight_keeps_a_preset_named_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBBUDGET_COST_MODEL__CPU_TIME_WEIGHT", "0.0005")
    model = Config.from_yaml(write(tmp_path, "cost_model: production\n")).build_cost_model()
    assert model.cpu_time_weight == Decimal("0.0005")
    assert model.environment_multiplier == 2
    assert model.memory_weight == production_cost_model().memory_weight


def test_explicit_values_are_overridden_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBBUDGET_SMTP_FROM", "env@example.com")
    assert Config(smtp_from="file@example.com").smtp_from == "env@example.com"


# --- keys that never did anything ---


@pytest.mark.parametrize(
    "yaml_text", ["default_tenant: acme\n", "enable_tui: false\n", 'default_tenant: "a\\0b"\nenable_tui: maybe\n']
)
def test_retired_keys_in_a_file_are_ignored_with_a_warning(tmp_path: Path, yaml_text: str) -> None:
    path = write(tmp_path, "retention_days: 30\n" + yaml_text)
    with pytest.warns(
        FutureWarning, match=r"configuration key (default_tenant|enable_tui) in .*budget\.yaml has no effect"
    ):
        c = Config.from_yaml(path)
    assert c.retention_days == 30  # the rest of the file applies
    assert not hasattr(c, "default_tenant") and not hasattr(c, "enable_tui")


@pytest.mark.parametrize("key", ["default_tenant", "enable_tui"])
def test_retired_keys_given_or_in_the_environment_are_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    with pytest.warns(FutureWarning, match=f"configuration key {key} .given to Config. has no effect"):
        assert Config(**{key: "x"}).retention_days == 365
    monkeypatch.setenv(f"JOBBUDGET_{key.upper()}", "x")
    with pytest.warns(FutureWarning, match=f"environment variable JOBBUDGET_{key.upper()} has no effect"):
        Config()


# --- errors ---


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("bogus_key: 1\n", "bogus_key"),
        ("database_url: sqlite:///x.db\nflush_intervall: 5m\n", "flush_intervall"),
        ("cost_model:\n  cpu_weight: 0.1\n", "cost_model.cpu_weight"),
        ("cost_model: expensive\n", "cost_model.preset"),
        ("cost_model:\n  cpu_time_weight: lots\n", "cost_model.cpu_time_weight"),
        ("cost_model:\n  cpu_time_weight: -0.1\n", "cost_model.cpu_time_weight"),
        ("cost_model:\n  environment_multiplier: 0\n", "cost_model.environment_multiplier"),
        ("cost_model:\n  network_weight: .nan\n", "cost_model.network_weight"),
        ("retention_days: 0\n", "retention_days"),
        ("retention_days: many\n", "retention_days"),
        ("raw_retention_days: -1\n", "raw_retention_days"),
        ("flush_interval: soon\n", "flush_interval"),
        ("flush_interval: 0s\n", "flush_interval"),
        ("flush_interval: -5\n", "flush_interval"),
        ("flush_interval: .inf\n", "flush_interval"),
        ("flush_interval: 99999999999999d\n", "flush_interval"),
        ("database_url: mysql://u:p@h/db\n", "database_url"),
        ("log_level: TRACE\n", "log_level"),
        ("smtp_starttls: maybe\n", "smtp_starttls"),
        ("notification_channels:\n  - type: sms\n    target: '+1555'\n", "notification_channels"),
        ("notification_channels:\n  - type: email\n    target: ops@x.com\n    colour: red\n", "notification_channels"),
        ("notification_channels: ops@x.com\n", "notification_channels"),
    ],
)
def test_bad_yaml_is_rejected_naming_the_key(tmp_path: Path, yaml_text: str, field: str) -> None:
    with pytest.raises(jobbudget.ValidationError) as info:
        Config.from_yaml(write(tmp_path, yaml_text))
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_unknown_key_message(tmp_path: Path) -> None:
    with pytest.raises(jobbudget.ValidationError) as info:
        Config.from_yaml(write(tmp_path, "bogus_key: 1\n"))
    assert info.value.reason == "unknown configuration key"
    assert info.value.code == "VALIDATION_FAILED"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_yaml_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(jobbudget.ValidationError) as info:
        Config.from_yaml(write(tmp_path, text))
    assert info.value.field == "config"


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(jobbudget.ValidationError) as info:
        Config.from_yaml(write(tmp_path, "a: [unclosed\n"))
    assert info.value.field == "config"
    assert "YAML" in info.value.reason
    with pytest.raises(jobbudget.ValidationError) as info:
        Config.from_yaml(tmp_path / "missing.yaml")
    assert info.value.field == "config"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("JOBBUDGET_RETENTION_DAYS", "abc", "retention_days"),
        ("JOBBUDGET_DATABASE_URL", "oracle://x", "database_url"),
        ("JOBBUDGET_COST_MODEL__CPU_TIME_WEIGHT", "cheap", "cost_model.cpu_time_weight"),
        ("JOBBUDGET_COST_MODEL__MEMORY_WEIGHT", "-1", "cost_model.memory_weight"),
        ("JOBBUDGET_FLUSH_INTERVAL", "whenever", "flush_interval"),
        ("JOBBUDGET_NOTIFICATION_CHANNELS", "not json", "notification_channels"),
    ],
)
def test_bad_environment_values_are_rejected_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(jobbudget.ValidationError) as info:
        Config()
    assert info.value.field == field


# --- durations and URLs ---


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300),
        ("30s", 30),
        ("1h", 3600),
        ("250ms", 0.25),
        ("2d", 172800),
        ("1.5h", 5400),
        (" 10 s ", 10),
        ("45", 45),
        (90, 90),
        (0.5, 0.5),
        (timedelta(minutes=2), 120),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["5 minutes", "m5", "-5m", "", "5w", True, None, [5]], ids=repr)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://user:pass@localhost/budgets", "postgresql://user:***@localhost/budgets"),
        (
            "postgresql+psycopg://u:s3cr%40t@db:5432/x?sslmode=require",
            "postgresql+psycopg://u:***@db:5432/x?sslmode=require",
        ),
        ("postgresql://:onlypassword@db/x", "postgresql://:***@db/x"),
        ("postgresql://user@db/x", "postgresql://user@db/x"),
        ("postgresql://db.internal:5432/x", "postgresql://db.internal:5432/x"),
        ("sqlite:///jobbudget.db", "sqlite:///jobbudget.db"),
        ("memory://", "memory://"),
    ],
)
def test_redacted_url(url: str, redacted: str) -> None:
    assert Config(database_url=url).redacted_url() == redacted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", max_size=12),
    password=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$&'()*+,;=%~", min_size=1, max_size=24),
    host=st.sampled_from(["localhost", "db.internal:5432", "10.0.0.7"]),
)
def test_redacted_url_never_shows_the_password(user: str, password: str, host: str) -> None:
    url = f"postgresql://{user}:{password}@{host}/budgets"
    shown = Config(database_url=url).redacted_url()
    assert shown == f"postgresql://{user}:***@{host}/budgets"
    userinfo = shown.split("://", 1)[1].split("@", 1)[0]
    assert userinfo.split(":", 1)[1] == "***"


def test_cloud_pricing_presets_in_config() -> None:
    from jobbudget.pricing import cost_model_from_preset

    assert Config(cost_model="gcp").build_cost_model() == cost_model_from_preset("gcp")
    tuned = Config(cost_model={"preset": "aws", "base_job_weight": "0.0001"}).build_cost_model()
    assert tuned.base_job_weight == Decimal("0.0001")
    assert tuned.cpu_time_weight == cost_model_from_preset("aws").cpu_time_weight
    with pytest.raises(jobbudget.ValidationError) as bad:
        Config(cost_model="moon-cloud")
    assert bad.value.field == "cost_model.preset"


@pytest.mark.parametrize(
    "channels",
    [
        [{"type": "webhook", "target": "https://h.example/tok3nS3cret", "auth_headr": "Bearer s3cr3tvalue"}],
        [{"type": "webhook", "target": "ftp://tok3nS3cret"}],
        [{"type": "email", "target": "not-an-address-tok3nS3cret"}],
    ],
)
def test_config_errors_never_echo_channel_secrets(channels: list[dict[str, str]]) -> None:
    with pytest.raises(jobbudget.ValidationError) as bad:
        Config(notification_channels=channels)
    text = f"{bad.value} {bad.value.value!r}"
    assert "tok3nS3cret" not in text and "s3cr3tvalue" not in text
    assert bad.value.field == "notification_channels"


def test_config_errors_never_echo_database_passwords() -> None:
    with pytest.raises(jobbudget.ValidationError) as bad:
        Config(database_url="mysql://user:pa55w0rd@db/x")
    assert "pa55w0rd" not in f"{bad.value} {bad.value.value!r}"


def test_every_key_is_in_the_configuration_reference() -> None:
    from pathlib import Path

    from jobbudget.config import Config

    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [name for name in Config.model_fields if f"`{name}`" not in doc]
    assert not missing, f"docs/configuration.md lacks {missing}"
    for name in Config.model_fields:
        if name not in ("cost_model", "notification_channels"):
            assert f"`JOBBUDGET_{name.upper()}`" in doc, name
