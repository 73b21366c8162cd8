"""``jobbudget tree ...``, ``refund``, ``adjust``, ``adjustments`` and ``budget raise``:
the organisation tree, corrections after the fact and temporary raises."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..domain.adjustments import Adjustment
from ..domain.errors import ValidationError
from ..domain.hierarchy import TenantTree
from ..domain.resources import labels_from_pairs
from ..domain.validation import parse_instant
from .common import (
    ConfigOption,
    DatabaseOption,
    JsonOption,
    Settings,
    cli_errors,
    emit_json,
    open_service,
    out_console,
    parse_date,
)
from .render import money

__all__ = ["adjust", "adjustments", "parse_labels", "raise_budget", "refund", "tree_app"]

tree_app = typer.Typer(help="The organisation tree: organisation → team → tenant.", no_args_is_help=True)
LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", metavar="KEY=VALUE", help="A job label (repeat for more), e.g. --label project=llm."),
]


def parse_labels(values: list[str] | None) -> dict[str, str]:
    """``["project=llm", ...]`` as a mapping; a value without ``=`` is an error."""
    return labels_from_pairs("--label", values or ())


def _instant(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    return parse_instant(option, text)


def adjustment_json(a: Adjustment) -> dict[str, Any]:
    return {
        "id": a.id, "kind": a.kind, "tenant_id": a.tenant_id, "queue_name": a.queue_name, "job_id": a.job_id,
        "occurred_at": a.occurred_at, "amount": a.amount, "reason": a.reason, "actor": a.actor, "at": a.at,
        "budget_ids": sorted({k.budget_id for k in a.keys}),
    }  # fmt: skip


def _tree_lines(tree: TenantTree, node: str, depth: int, out: list[str]) -> None:
    out.append("  " * depth + node)
    for child in tree.children(node):
        _tree_lines(tree, child, depth + 1, out)


@tree_app.command("show")
def tree_show(config: ConfigOption = None, database_url: DatabaseOption = None, json: JsonOption = False) -> None:
    """Print the tree, each node indented under its parent."""
    settings = Settings(config, database_url, json)
    with cli_errors(), open_service(settings) as service:
        tree = service.tenant_tree()
    if json:
        emit_json([{"node": n, "parent": p} for n, p in sorted(tree.parents.items())])
        return
    if not tree:
        out_console().print(
            "No tree yet: every tenant is a root. Place one with `jobbudget tree set TENANT --parent TEAM`."
        )
        return
    lines: list[str] = []
    for root in tree.roots():
        _tree_lines(tree, root, 0, lines)
    out_console().print(Text("\n".join(lines)))


@tree_app.command("set")
def tree_set(
    node: Annotated[str, typer.Argument(metavar="NODE", help="A tenant or a team.")],
    parent: Annotated[str, typer.Option("--parent", metavar="PARENT", help='Its parent; "" makes it a root.')],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Place NODE under PARENT.  A budget on a node covers every tenant below it; the
    budgets of the old and new ancestors are recounted."""
    settings = Settings(config, database_url, json)
    with cli_errors({"parent": "--parent", "node": "NODE"}), open_service(settings) as service:
        tree = service.set_parent(node, parent, actor="cli")
    if json:
        emit_json({"node": node, "parent": parent, "lineage": list(tree.lineage(node))})
        return
    if parent:
        path = " → ".join(reversed(tree.lineage(node)))
        out_console().print(Text(f"{node} is now under {parent}: {path}"))
    else:
        out_console().print(Text(f"{node} is a root"))


def refund(
    tenant: Annotated[str, typer.Argument(metavar="TENANT")],
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID")],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why, for the audit log.")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Refund a job's whole cost to the budgets it counted toward (once), audited."""
    settings = Settings(config, database_url, json)
    with cli_errors({"reason": "--reason"}), open_service(settings) as service:
        done = service.refund_job(tenant, job_id, reason=reason, actor="cli")
    if json:
        emit_json(None if done is None else adjustment_json(done))
        return
    if done is None:
        out_console().print(Text(f"Job {tenant}/{job_id} was refunded before: nothing changed."))
        return
    out_console().print(
        Text(f"Refunded {money(-done.amount)} for job {tenant}/{job_id} ({len(done.keys)} budget periods).")
    )


def adjust(
    tenant: Annotated[str, typer.Argument(metavar="TENANT")],
    amount: Annotated[
        str,
        typer.Option("--amount", metavar="NUMBER", help="Negative: a credit (e.g. --amount=-2.50); positive: a debit."),
    ],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why, for the audit log and reports.")],
    queue: Annotated[str, typer.Option("--queue", metavar="QUEUE", help="Only this queue's budgets.")] = "",
    at: Annotated[
        str | None, typer.Option("--at", metavar="WHEN", help="The instant it counts at (ISO 8601; default now).")
    ] = None,
    label: LabelOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Credit or debit a tenant's spend (a correction, a late charge), counted toward
    the budgets covering it at --at."""
    settings = Settings(config, database_url, json)
    options = {"reason": "--reason", "at": "--at", "queue_name": "--queue", "amount": "--amount", "labels": "--label"}
    with cli_errors(options), open_service(settings) as service:
        done = service.adjust_spend(
            tenant, amount, reason=reason, actor="cli", queue_name=queue, at=_instant("at", at),
            labels=parse_labels(label),
        )  # fmt: skip
    if json:
        emit_json(adjustment_json(done))
        return
    out_console().print(
        Text(f"{done.kind.capitalize()} of {money(abs(done.amount))} for {tenant} on {done.day} ({done.id}).")
    )


def adjustments(
    tenant: Annotated[str | None, typer.Option("--tenant", metavar="NODE", help="A node's subtree.")] = None,
    start: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="First UTC day (default: 30 days ago).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", metavar="DATE", help="Last UTC day (default: today).")] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """List refunds, credits and debits."""
    settings = Settings(config, database_url, json)
    with cli_errors({"start": "--from", "end": "--to"}), open_service(settings) as service:
        last = parse_date("end", end) if end else service.now().date()
        first = parse_date("start", start) if start else last - timedelta(days=30)
        if last < first:
            raise ValidationError("end", last.isoformat(), f"must not be before --from {first.isoformat()}")
        found = service.list_adjustments(tenant, start=first, end=last)
    if json:
        emit_json([adjustment_json(a) for a in found])
        return
    if not found:
        out_console().print(f"No adjustments from {first} to {last}.")
        return
    table = Table(title=f"Adjustments {first}..{last}", title_justify="left")
    for column in ("Day", "Kind", "Tenant", "Queue", "Job", "Amount", "Reason", "By"):
        table.add_column(column, overflow="fold", justify="right" if column == "Amount" else "left")
    for a in found:
        table.add_row(
            Text(str(a.day)), Text(a.kind), Text(a.tenant_id), Text(a.queue_name or "-"), Text(a.job_id or "-"),
            Text(money(a.amount)), Text(a.reason), Text(a.actor),
        )  # fmt: skip
    out_console().print(table)


def raise_budget(
    budget_id: Annotated[str, typer.Argument(metavar="BUDGET_ID")],
    amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="How much more, until --until.")],
    until: Annotated[str, typer.Option("--until", metavar="WHEN", help="When the raise ends (ISO 8601).")],
    approver: Annotated[str, typer.Option("--approver", metavar="WHO", help="Who approved it.")],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why.")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Raise a budget's amount for a while (audited with its approver)."""
    settings = Settings(config, database_url, json)
    options = {"expires_at": "--until", "approver": "--approver", "reason": "--reason", "amount": "AMOUNT"}
    with cli_errors(options), open_service(settings) as service:
        expires = parse_instant("expires_at", until)
        done = service.raise_budget(
            budget_id, amount, expires_at=expires, approver=approver, reason=reason, actor="cli"
        )
    if json:
        emit_json(done)
        return
    out_console().print(
        Text(f"Budget {budget_id} raised by {money(done.amount)} until {done.expires_at.isoformat()} "
             f"(approved by {done.approver}).")
    )  # fmt: skip
