"""One settings object: YAML file (the design document's keys) + ``JOBBUDGET_*``
environment variables (which win over the file).  Nothing is built at import."""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from .domain.budget import NotificationChannel, validate_channel
from .domain.codec import channel_from_mapping
from .domain.cost import CostModel
from .domain.errors import ValidationError
from .domain.outbound import OutboundPolicy, check_channel_target, parse_host, parse_network
from .pricing import BUILT_IN, model_names, named_model
from .slurm.policy import SlurmPolicy

__all__ = ["Config", "CostModelSettings", "SlurmSettings", "parse_duration"]

#: Keys earlier versions documented but never read: a file (or ``JOBBUDGET_*``
#: variable) that still sets one is accepted with a warning instead of rejected.
RETIRED_KEYS = ("default_tenant", "enable_tui")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
PRESETS = BUILT_IN  # the built-in named models (the cloud tables are in jobbudget.pricing)


def parse_duration(value: Any) -> timedelta:
    """``"5m"``, ``"30s"``, ``"1h"``, ``"250ms"``, ``"2d"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite duration")
        seconds = value
    else:
        match = _DURATION.match(str(value)) if isinstance(value, str) else None
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 30s, 5m or 1h")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long a duration") from None


def _network(text: str) -> str:
    return str(parse_network(text))


class CostModelSettings(BaseModel):
    """The ``cost_model`` section: a preset name and/or weights overriding it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = "default"
    cpu_time_weight: Decimal | None = None
    memory_weight: Decimal | None = None
    payload_weight: Decimal | None = None
    redis_ops_weight: Decimal | None = None
    network_weight: Decimal | None = None
    base_job_weight: Decimal | None = None
    environment_multiplier: Decimal | None = None
    #: $ per unit of named resources: ``{"gpu": 0.0007, "gpu:h100": 0.0011}``
    resources: dict[str, Decimal] | None = None
    #: per queue: ``{"gpu": {"multiplier": 1.5, "weights": {"gpu:a100": 0.0009}}, "scavenger": 0}``
    queues: dict[str, Any] | None = None
    #: per QoS multipliers: ``{"low": 0.5, "standby": 0}``
    qos: dict[str, Decimal] | None = None
    #: Slurm's MAX_TRES: ``["cpu_time", "memory", "gpu"]``
    max_tres: list[str] | None = None

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in model_names():
            raise ValueError(f"unknown preset; choose one of {', '.join(model_names())}")
        return value

    def build(self) -> CostModel:
        base = named_model(self.preset).to_mapping()
        given = {k: v for k, v in self.model_dump(exclude={"preset"}).items() if v is not None}
        if "max_tres" in given:
            given["max_tres"] = tuple(given["max_tres"])
        return CostModel(**{**base, **given})


class SlurmSettings(BaseModel):
    """The ``slurm`` section (docs/slurm.md): how the cluster's names map to tenants and
    queues, and how jobs are priced and throttled at ``sbatch``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_from: Literal["account", "user"] = "account"
    tenants: dict[str, str] = {}
    queues: dict[str, str] = {}
    job_id_prefix: str = pydantic.Field(default="slurm", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
    emergency_qos: list[str] = []
    default_time_limit: timedelta = timedelta(hours=1)
    default_memory_per_cpu_mb: int = pydantic.Field(default=0, ge=0, le=1 << 40)
    pending_allowance: timedelta = timedelta(days=1)
    throttle: str = pydantic.Field(default="nice", pattern=r"^(nice|hold|qos:[A-Za-z0-9_.-]{1,64})$")
    throttle_nice: int = pydantic.Field(default=10_000, ge=1, le=2_147_483_645)

    @field_validator("default_time_limit", "pending_allowance", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    def policy(self) -> SlurmPolicy:
        return SlurmPolicy(
            tenant_from=self.tenant_from,
            tenants=dict(self.tenants),
            queues=dict(self.queues),
            job_id_prefix=self.job_id_prefix,
            emergency_qos=tuple(self.emergency_qos),
            default_time_limit=self.default_time_limit,
            default_memory_per_cpu_mb=self.default_memory_per_cpu_mb,
            pending_allowance=self.pending_allowance,
            throttle=self.throttle,
            throttle_nice=self.throttle_nice,
        )


class Config(BaseSettings):
    """Service configuration.  Every key can be set in YAML or as ``JOBBUDGET_<KEY>``
    (nested: ``JOBBUDGET_COST_MODEL__CPU_TIME_WEIGHT``)."""

    model_config = SettingsConfigDict(
        env_prefix="JOBBUDGET_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    database_url: str = "sqlite:///jobbudget.db"
    database_schema: str | None = None
    flush_interval: timedelta = timedelta(minutes=5)
    #: How late a tenant key may report a job: queues redeliver late, but a job dated
    #: further back would escape the current period's budget.  Admin keys, the CLI
    #: and the library import historic jobs regardless.
    late_job_window: timedelta = timedelta(days=2)
    retention_days: int = pydantic.Field(default=365, ge=1, le=36500)
    raw_retention_days: int = pydantic.Field(default=35, ge=1, le=36500)
    cost_model: CostModelSettings = CostModelSettings()
    #: jobs that end in these states (Slurm's names) are refunded when metered: the
    #: platform's fault, not the tenant's.  [] turns automatic refunds off.
    refund_exit_states: list[str] = ["NODE_FAIL", "PREEMPTED", "BOOT_FAIL"]
    #: Slurm: admission at sbatch, metering at job end (docs/slurm.md)
    slurm: SlurmSettings = SlurmSettings()
    notification_channels: list[dict[str, Any]] = []
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # e-mail alerts (SMTP)
    smtp_host: str = "localhost"
    smtp_port: int = pydantic.Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: pydantic.SecretStr | None = None
    smtp_from: str = "jobbudget@localhost"
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = pydantic.Field(default=10.0, gt=0, le=300)
    # alert delivery
    notification_rate_limit_per_hour: int = pydantic.Field(default=20, ge=1, le=100_000)
    notifications_in_background: bool = True
    # where webhook and Slack requests may go besides public addresses (domain/outbound.py);
    # in the environment a JSON list or comma-separated: JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS=10.1.2.3/32
    notification_allowed_networks: Annotated[list[Annotated[str, AfterValidator(_network)]], NoDecode] = []
    notification_allowed_hosts: Annotated[list[Annotated[str, AfterValidator(parse_host)]], NoDecode] = []
    # test messages through a budget's channel (POST /v1/budgets/{id}/channels/{i}/test)
    channel_test_rate_limit_per_minute: int = pydantic.Field(default=5, ge=1, le=10_000)
    # metrics: /metrics needs a key (an admin key, an unbound reporter key, or
    # metrics_token) with metrics_require_key, or once metrics_token is set
    metrics_max_tenants: int = pydantic.Field(default=100, ge=1, le=100_000)
    metrics_require_key: bool = False
    metrics_token: pydantic.SecretStr | None = pydantic.Field(default=None, min_length=16, max_length=512)
    # the HTTP server (jobbudget serve) and its WebSocket
    http_header_timeout: float = pydantic.Field(default=10.0, gt=0, le=3600)
    http_keep_alive_timeout: int = pydantic.Field(default=5, ge=1, le=3600)
    http_max_connections: int = pydantic.Field(default=1000, ge=1, le=1_000_000)
    http_backlog: int = pydantic.Field(default=2048, ge=1, le=65535)
    http_max_header_bytes: int = pydantic.Field(default=16384, ge=1024, le=1024 * 1024)
    ws_max_sockets_per_key: int = pydantic.Field(default=32, ge=1, le=100_000)
    # shared hot state (many processes, one budget): auto = redis when redis_url is
    # set, else memory (one process); database = many processes on one database, no Redis
    shared_state: Literal["auto", "memory", "database", "redis"] = "auto"
    redis_url: str | None = None
    redis_prefix: str = pydantic.Field(default="jb", min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    redis_failure_mode: Literal["fail_open", "fail_closed", "local"] = "local"
    redis_timeout: float = pydantic.Field(default=0.5, gt=0, le=30)
    budget_watch_interval: float = pydantic.Field(default=1.0, gt=0, le=3600)
    # a folder on local disk: process_job_cost returns once the job is journaled there
    # (fdatasync) and counted in Redis; a background drain stores jobs in the ledger in
    # batches (docs/operations.md, "Metering at fleet scale").  Needs Redis.
    metering_journal: Path | None = None

    def __init__(self, **values: Any) -> None:
        _drop_retired(values, "(given to Config)", environment=True)
        if isinstance(values.get("cost_model"), str):
            # As a mapping, so that JOBBUDGET_COST_MODEL__* variables merge with the preset.
            values["cost_model"] = {"preset": values["cost_model"]}
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            raise _convert(exc) from None
        except SettingsError as exc:  # an environment value that is not valid JSON
            match = re.search(r'field "([^"]+)"', str(exc))
            raise ValidationError(match.group(1) if match else "config", "<environment>", str(exc)) from None
        self.cost_model.build()  # reject bad weights now, naming the key, not when first used
        self._check_channel_targets()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides what the file (passed as init values) says.
        return (env_settings, init_settings)

    @field_validator("flush_interval", "late_job_window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        duration = parse_duration(value)
        if duration <= timedelta(0):
            raise ValueError("must be positive")
        return duration

    @field_validator("cost_model", mode="before")
    @classmethod
    def _preset(cls, value: Any) -> Any:
        return {"preset": value} if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql", "postgres:", "memory:")):
            raise ValueError("must be sqlite:///FILE, postgresql://... or memory://")
        return value

    @field_validator("database_schema")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        # The name is quoted into SQL (CREATE SCHEMA "...") and a search_path option.
        if value is not None and not _SCHEMA.match(value):
            raise ValueError("must be letters, digits and _ (at most 63, not starting with a digit)")
        return value

    @field_validator("notification_channels")
    @classmethod
    def _channels(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in value:
            validate_channel(channel_from_mapping(item))
        return value

    @field_validator("notification_allowed_networks", "notification_allowed_hosts", mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        """The environment's text: a JSON list, or entries separated by commas."""
        if not isinstance(value, str):
            return value
        if value.strip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("is not a JSON list; write 10.1.2.3/32,fd00::/8 or a JSON list") from None
        return [part for part in (p.strip() for p in value.split(",")) if part]

    def outbound_policy(self) -> OutboundPolicy:
        """Where webhook and Slack requests may connect: public addresses plus
        ``notification_allowed_networks`` and ``notification_allowed_hosts``."""
        return OutboundPolicy.of(self.notification_allowed_networks, self.notification_allowed_hosts)

    def _check_channel_targets(self) -> None:
        """The configuration's own channels follow the same rule as tenants' channels."""
        policy = self.outbound_policy()
        for index, channel in enumerate(self.channels()):
            check_channel_target(policy, channel, f"notification_channels[{index}].target")

    @classmethod
    def from_yaml(cls, path: str | Path) -> Config:
        """Read a YAML file; unknown keys and bad values are rejected naming the key."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ValidationError("config", str(path), f"cannot read file: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ValidationError("config", str(path), f"not valid YAML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ValidationError(
                "config", str(path), f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        except RecursionError:
            raise ValidationError("config", str(path), "not valid YAML: nested too deeply") from None
        except ValueError as exc:  # an integer over Python's digit limit for int()
            raise ValidationError("config", str(path), f"not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValidationError("config", str(path), "must be a mapping of keys to values")
        _drop_retired(data, f"in {path}", environment=False)
        return cls(**data)

    def build_cost_model(self) -> CostModel:
        return self.cost_model.build()

    def channels(self) -> list[NotificationChannel]:
        return [channel_from_mapping(item) for item in self.notification_channels]

    def redacted_url(self) -> str:
        """The database URL with any password masked."""
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", self.database_url)


def _drop_retired(values: dict[str, Any], where: str, *, environment: bool) -> None:
    """Take the retired keys out of ``values``, warning about each one set there (or,
    with ``environment``, as a ``JOBBUDGET_*`` variable, which pydantic ignores)."""
    names = {name.upper() for name in os.environ} if environment else set()
    for key in RETIRED_KEYS:
        variable = f"JOBBUDGET_{key.upper()}"
        found = ([f"configuration key {key} {where}"] if key in values else []) + (
            [f"environment variable {variable}"] if variable in names else []
        )
        values.pop(key, None)
        for what in found:
            warnings.warn(f"{what} has no effect and is ignored: remove it", FutureWarning, stacklevel=3)


def _convert(exc: pydantic.ValidationError) -> ValidationError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "config"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown configuration key"
    value = first.get("input")
    if isinstance(value, (dict, list)):
        value = "<mapping>" if isinstance(value, dict) else "<list>"
    if field.startswith(("notification_channels", "smtp_password", "smtp_user", "database_url", "metrics_token")):
        value = "<hidden>"  # may hold tokens, passwords or addresses
    # pydantic repeats the rejected input in some messages ("Value error, ...: got {...}")
    message = message.split(" (got ", 1)[0] if field.startswith("notification_channels") else message
    return ValidationError(field, value, message)
