"""``jobbudget alerts ...`` (list, ack, resend, dispatch) and ``jobbudget notify test|secret``.

Commands deliver in the foreground: the service they open has no background delivery
thread, so a command never leaves a half-finished send behind when it exits, and
``alerts dispatch`` (or ``ingest``) does one bounded, synchronous pass.  Everything
shown is redacted: targets as ``https://host/***`` or ``o***@example.com``, and the
last errors were stripped of the channel's secrets before they were stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import RenderableType
from rich.text import Text

from ..domain.alerts import Alert, DeliveryState
from ..domain.budget import NotificationChannel, redact_target
from ..domain.errors import JobBudgetError, ValidationError
from ..ports import Clock, Store
from ..service import BudgetService
from .common import (
    AtOption,
    ConfigOption,
    DatabaseOption,
    JsonOption,
    Settings,
    cli_errors,
    emit_json,
    err_console,
    fixed_clock,
    out_console,
    require_database,
)
from .render import money, percent
from .tables import Column, fit_table

if TYPE_CHECKING:
    from ..notify.dispatcher import DispatchResult

__all__ = [
    "INGEST_DISPATCH_TIMEOUT",
    "NotifyOption",
    "alert_json",
    "alerts_app",
    "alerts_table",
    "deliver_after_ingest",
    "dispatch_text",
    "notify_app",
    "open_foreground_service",
]

#: How long ``ingest`` spends delivering the alerts its jobs fired (one pass).
INGEST_DISPATCH_TIMEOUT = 10.0
_ERROR_SHOWN = 160  # characters of a delivery's last error in the table (JSON has all of it)

alerts_app = typer.Typer(
    help="Budget alerts: list them with their deliveries, acknowledge, re-send, deliver now.",
    no_args_is_help=True,
    add_completion=False,
)
notify_app = typer.Typer(
    help="Alert channels: send a test notification, make a webhook signing secret.",
    no_args_is_help=True,
    add_completion=False,
)

NotifyOption = Annotated[
    bool,
    typer.Option(
        "--notify/--no-notify",
        help="After storing, deliver the alerts the new spend fired (one pass of at most 10 s; failures are "
        "retried later by `jobbudget alerts dispatch`), or leave them queued.",
    ),
]
TYPE_STYLES = {
    "warning": "yellow",
    "throttle": "dark_orange",
    "block": "bold red",
    "forecast_overrun": "magenta",
    "bypass": "magenta",
    "reset": "cyan",
}
STATUS_STYLES = {
    "sent": "green",
    "digested": "green",
    "pending": "yellow",
    "sending": "cyan",
    "held": "magenta",
    "failed": "bold red",
}


@contextlib.contextmanager
def open_foreground_service(
    settings: Settings, *, clock: Clock | None = None, store: Store | None = None, creates: bool = False
) -> Iterator[BudgetService]:
    """The service for one command, without the background delivery thread (a SQLite
    file must exist unless the command ``creates`` it)."""
    config = settings.build_config().model_copy(update={"notifications_in_background": False})
    if store is None:
        require_database(config, creates=creates)
    with BudgetService(config, clock=clock, store=store) as service:
        yield service


# -- rendering ---------------------------------------------------------------------------
def _time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def delivery_text(d: DeliveryState) -> Text:
    """``#3 webhook http://127.0.0.1/*** sent (1 attempt)``, and what went wrong."""
    label = {"held": "held (rate limit)", "failed": "failed (dead letter)", "digested": "sent in a digest"}
    text = Text(f"#{d.id} {d.channel_type} {d.target} ")
    text.append(label.get(d.status, d.status), style=STATUS_STYLES.get(d.status, ""))
    detail = [_plural(d.attempts, "attempt")]
    if d.status == "pending" and d.attempts and d.next_attempt_at is not None:
        detail.append(f"next {_time(d.next_attempt_at)}")
    text.append(f" ({', '.join(detail)})")
    if d.last_error and d.status != "sent":
        error = d.last_error if len(d.last_error) <= _ERROR_SHOWN else d.last_error[: _ERROR_SHOWN - 1] + "…"
        text.append(f"\n  last error: {error}", style="dim")
    return text


def alerts_table(alerts: list[Alert], *, title: str = "Alerts", width: int = 160) -> RenderableType:
    """One row per alert: id and type; time, scope and period; spend against the
    amount; acknowledgement; and every delivery with its status.  Within ``width``
    columns: ids, times, names and money are never cut (the period and the
    acknowledgement are left out first, then each alert is a block of lines)."""
    columns = [
        Column("Alert / type", keep=True),
        Column("Time (UTC) / scope", keep=True),
        Column("Period", rank=2),
        Column("Spend / amount", keep=True),
        Column("Ack", rank=1),
        Column("Deliveries"),
    ]
    rows: list[list[str | Text]] = []
    for alert in alerts:
        e = alert.event
        scope = f"{e.tenant_id}/{e.queue_name}" if e.queue_name else f"{e.tenant_id} (all queues)"
        spend = f"{money(e.current_spend)} / {money(e.budget_amount, e.currency)}\n{percent(e.utilization)}"
        if e.forecast_spend is not None:
            spend += f"\nforecast {money(e.forecast_spend, e.currency)}"
        ack = f"{alert.acknowledged_by}\n{_time(alert.acknowledged_at)}" if alert.acknowledged_at else "-"
        deliveries = Text("\n").join(delivery_text(d) for d in alert.deliveries) if alert.deliveries else Text("-")
        rows.append(
            [
                Text(e.id) + Text("\n") + Text(e.type, style=TYPE_STYLES.get(e.type, "")),
                Text(f"{_time(e.occurred_at)}\n{scope}"),
                Text(f"{e.period_start}\n{e.period_end}"),
                Text(spend),
                Text(ack),
                deliveries,
            ]
        )
    return fit_table(columns, rows, width=width, title=title)


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as JSON: the event's fields, the acknowledgement and the deliveries."""
    e = alert.event
    return {
        "id": e.id,
        "type": e.type,
        "tenant_id": e.tenant_id,
        "queue_name": e.queue_name,
        "budget_id": e.budget_id,
        "period_start": e.period_start,
        "period_end": e.period_end,
        "occurred_at": e.occurred_at,
        "current_spend": e.current_spend,
        "budget_amount": e.budget_amount,
        "utilization": e.utilization,
        "currency": e.currency,
        "forecast_spend": e.forecast_spend,
        "message": e.message,
        "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by": alert.acknowledged_by,
        "deliveries": list(alert.deliveries),
    }


def dispatch_text(result: DispatchResult) -> str:
    """``Alerts: 5 delivered (some in 1 digest), 1 to retry later, 0 failed (dead letters), 0 held ...``."""
    digests = f" (some in {_plural(result.digests, 'digest')})" if result.digests else ""
    return (
        f"Alerts: {result.sent} delivered{digests}, {result.retrying} to retry later, "
        f"{result.failed} failed (dead letters), {result.held} held by the rate limit."
    )


def deliver_after_ingest(service: BudgetService, *, stored: int, notify: bool) -> DispatchResult | None:
    """One delivery pass after an ingest that stored jobs (their spend may have fired
    alerts).  A failure here does not fail the ingest: the alerts stay queued."""
    if not notify or stored == 0:
        return None
    try:
        return service.dispatch_notifications(timeout=INGEST_DISPATCH_TIMEOUT)
    except JobBudgetError as exc:
        err_console().print(
            f"warning: alerts not delivered now ({exc}); they stay queued for `jobbudget alerts dispatch`",
            markup=False,
        )
        return None


# -- alerts ----------------------------------------------------------------------------------
@alerts_app.command("list")
def list_alerts(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's alerts.")] = None,
    active: Annotated[
        bool, typer.Option("--active", help="Only alerts not acknowledged, of periods not yet over.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 500,
    at: AtOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """List alerts newest first, with every delivery's status.

    Each delivery shows its channel (target redacted), status (pending, sending,
    sent, sent in a digest, held by the rate limit, failed = dead letter), attempts
    and last error.  Use the alert id with `alerts ack`, the delivery number (#N)
    with `alerts resend`.
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), open_foreground_service(settings, clock=fixed_clock(at)) as service:
        alerts = service.list_alerts(tenant, active_only=active, limit=limit)
    if json:
        emit_json([alert_json(a) for a in alerts])
    elif not alerts:
        out_console().print("No active alerts." if active else "No alerts.")
    else:
        console = out_console()
        console.print(alerts_table(alerts, title="Active alerts" if active else "Alerts", width=console.width))


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[str, typer.Argument(help="The alert's id (see `jobbudget alerts list`).", show_default=False)],
    by: Annotated[str, typer.Option("--by", metavar="NAME", help="Who acknowledges it.", show_default=False)],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Acknowledge an alert: it leaves `alerts list --active` (deliveries are unaffected)."""
    settings = Settings(config, database_url, json)
    with cli_errors(), open_foreground_service(settings) as service:
        service.acknowledge_alert(alert_id, by)
        at = service.now()
    if json:
        emit_json({"id": alert_id, "acknowledged_by": by.strip(), "acknowledged_at": at})
    else:
        out_console().print(Text(f"Acknowledged alert {alert_id} by {by.strip()}."))


@alerts_app.command("resend")
def resend(
    delivery_id: Annotated[
        int, typer.Argument(help="The delivery's number (#N in `jobbudget alerts list`).", show_default=False)
    ],
    dispatch: Annotated[
        bool, typer.Option("--dispatch/--queue-only", help="Deliver right away (one pass), or only queue it.")
    ] = True,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Send a delivery again, now: a failed (dead-lettered) or sent one, or one still
    waiting for its next retry or under the channel's rate limit.

    It is queued with a fresh retry budget and, unless --queue-only, delivered now
    along with anything else due.  It carries the same event id as before.  A
    delivery that is being sent at this moment is left alone (say so, exit 1).
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), open_foreground_service(settings) as service:
        service.resend_delivery(delivery_id)
        result = service.dispatch_notifications(timeout=30.0) if dispatch else None
        state = _state_of(service, delivery_id)
    if json:
        emit_json({"delivery_id": delivery_id, "queued": True, "dispatch": result, "delivery": state})
        return
    console = out_console()
    console.print(f"Delivery #{delivery_id} queued again.")
    if result is not None:
        console.print(dispatch_text(result), markup=False)
    if state is not None:
        console.print(delivery_text(state))


def _state_of(service: BudgetService, delivery_id: int) -> DeliveryState | None:
    for alert in service.list_alerts(limit=10_000):
        for d in alert.deliveries:
            if d.id == delivery_id:
                return d
    return None


@alerts_app.command("dispatch")
def dispatch(
    timeout: Annotated[
        float, typer.Option(min=0.1, max=3600, metavar="SECONDS", help="Stop starting new sends after this long.")
    ] = 30.0,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Deliver what is due now, in one synchronous pass, and print the counts.

    Due: new alerts, retries whose backoff is over, held alerts once the channel's
    rate limit has room (sent as one digest), and deliveries whose dispatcher died
    (lease expired).  Failed ones are retried later; run it again, or from cron.
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), open_foreground_service(settings) as service:
        result = service.dispatch_notifications(timeout=timeout)
    if json:
        emit_json(result)
    else:
        out_console().print(dispatch_text(result), markup=False)


# -- notify test -------------------------------------------------------------------------------
class ChannelType(StrEnum):
    webhook = "webhook"
    slack = "slack"
    email = "email"


def _metadata(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError("meta", key.strip() + "=...", "must be KEY=VALUE, e.g. timeout=5s")
        found[key.strip()] = value
    return found


@notify_app.command("test")
def notify_test(
    type: Annotated[ChannelType, typer.Option("--type", help="The channel type.", show_default=False)],
    target: Annotated[
        str,
        typer.Option(
            "--target", metavar="URL|ADDRESS", help="Webhook or Slack URL, or e-mail address.", show_default=False
        ),
    ],
    meta: Annotated[
        list[str] | None,
        typer.Option(
            "--meta",
            metavar="KEY=VALUE",
            help="Channel metadata, repeatable: timeout=5s, auth_header=..., secret=..., channel=#alerts, "
            "subject_prefix=...",
        ),
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Send a clearly labelled test notification through a channel, now.

    Exit status 1 (with the reason, secrets removed) if it could not be delivered.
    E-mail uses the SMTP settings of the configuration.  Nothing is stored: the
    database is not opened (--database-url is accepted, as by every command).
    """
    from ..storage.memory import MemoryStore

    settings = Settings(config, database_url, json)
    with cli_errors():
        channel = NotificationChannel(type=type.value, target=target, metadata=_metadata(meta or []))
        with open_foreground_service(settings, store=MemoryStore()) as service:
            service.send_test_notification(channel)
    shown = redact_target(channel.type, channel.target)
    if json:
        emit_json({"sent": True, "type": channel.type, "target": shown})
    else:
        out_console().print(Text(f"Test notification sent to {channel.type} {shown}."))


@notify_app.command("secret")
def notify_secret(json: JsonOption = False) -> None:
    """Print a new webhook signing secret (whsec_ and the base64 of 32 random bytes).

    Set it as the channel's metadata ``secret`` and give the same value to the
    receiver, which verifies the webhook-signature header with any Standard Webhooks
    library (docs/webhooks.md).
    """
    from ..domain.signing import new_secret

    secret = new_secret()
    if json:
        emit_json({"secret": secret})
    else:
        typer.echo(secret)
