"""``jobbudget apikey ...``: create, list and revoke the HTTP API's keys.

A key is printed once, by ``create``; only its SHA-256 digest is stored, so it can
never be shown again (``list`` shows its prefix, never the key or the digest).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..domain.apikeys import ApiKey
from .alerts_cmd import open_foreground_service
from .common import ConfigOption, DatabaseOption, JsonOption, Settings, cli_errors, emit_json, out_console

__all__ = ["ONCE_WARNING", "apikey_app", "key_json"]

ONCE_WARNING = "Store this key now: it cannot be shown again (only its SHA-256 digest is kept)."

apikey_app = typer.Typer(
    help="API keys of the HTTP API: create (shown once), list, revoke.", no_args_is_help=True, add_completion=False
)


class RoleChoice(StrEnum):
    admin = "admin"
    tenant = "tenant"
    reporter = "reporter"


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key's public fields (never the key itself or its digest)."""
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "tenant_id": key.tenant_id,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


@apikey_app.command("create")
def create(
    role: Annotated[
        RoleChoice,
        typer.Option(
            "--role",
            help="admin: everything; tenant: read and write one tenant; reporter: read only "
            "(one tenant with --tenant, else all).",
            show_default=False,
        ),
    ],
    tenant: Annotated[
        str | None, typer.Option("--tenant", metavar="TENANT", help="The key's tenant (required for --role tenant).")
    ] = None,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="A label, e.g. who uses the key.")] = "",
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Create an API key and print it, once.

    Only the key's SHA-256 digest is stored: copy the key now, it cannot be shown
    again.  Lost keys are revoked and replaced.
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), open_foreground_service(settings, creates=True) as service:
        key, text = service.create_api_key(role=role.value, tenant_id=tenant, name=name, actor="cli")
    if json:
        emit_json({**key_json(key), "key": text, "warning": ONCE_WARNING})
        return
    scope = f"tenant {key.tenant_id}" if key.tenant_id else "all tenants"
    console = out_console()
    console.print(Text(f"Created {key.role} API key {key.id} ({scope}, prefix {key.prefix})."))
    console.print(Text(text), soft_wrap=True)
    console.print(Text(ONCE_WARNING, style="bold yellow"))


@apikey_app.command("list")
def list_keys(config: ConfigOption = None, database_url: DatabaseOption = None, json: JsonOption = False) -> None:
    """List every API key, revoked ones too (prefix only, never the key)."""
    settings = Settings(config, database_url, json)
    with cli_errors(), open_foreground_service(settings) as service:
        keys = service.list_api_keys()
    if json:
        emit_json([key_json(k) for k in keys])
        return
    if not keys:
        out_console().print("No API keys. Create one with `jobbudget apikey create --role admin`.")
        return
    table = Table(title="API keys", title_justify="left")
    for column in ("Id", "Name", "Role", "Tenant", "Prefix", "Created (UTC)", "Revoked (UTC)"):
        table.add_column(column, overflow="fold")
    for k in keys:
        table.add_row(
            Text(k.id),
            Text(k.name or "-"),
            Text(k.role),
            Text(k.tenant_id or "(all)"),
            Text(k.prefix),
            Text(_time(k.created_at)),
            Text(_time(k.revoked_at), style="red" if k.revoked_at else ""),
        )
    out_console().print(table)


@apikey_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `jobbudget apikey list`).", show_default=False)],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Revoke an API key: it is refused from now on (by running API servers within 5 s)."""
    settings = Settings(config, database_url, json)
    with cli_errors(), open_foreground_service(settings) as service:
        service.revoke_api_key(key_id, actor="cli")
        revoked = next((k for k in service.list_api_keys() if k.id == key_id), None)
    at = revoked.revoked_at if revoked else None
    if json:
        emit_json({"id": key_id, "revoked": True, "revoked_at": at})
    else:
        out_console().print(Text(f"Revoked API key {key_id}."))
