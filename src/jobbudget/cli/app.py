"""The ``jobbudget`` command: Typer app with the database, enforcement, ingest and
demo commands (budget commands are in :mod:`.budgets`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from .. import __version__
from ..config import Config

if TYPE_CHECKING:
    from ..demo import DemoReport
from .alerts_cmd import alerts_app, notify_app
from .apikey_cmd import apikey_app
from .budgets import budget_app
from .calibrate_cmd import calibrate
from .common import (
    AtOption,
    ConfigOption,
    DatabaseOption,
    JsonOption,
    Settings,
    cli_errors,
    command_name,
    emit_json,
    fixed_clock,
    out_console,
)
from .common import open_service as _open_service
from .costmodel_cmd import costmodel_app
from .forecast_cmd import forecast, forecast_accuracy
from .help_style import install as _help_style
from .import_cmd import import_jobs
from .ingest_cmd import ingest
from .platform_cmd import LabelOption, adjust, adjustments, parse_labels, raise_budget, refund, tree_app
from .render import action_text, money, status_json, status_table
from .report_cmd import report
from .serve_cmd import serve
from .slurm_cmd import slurm_app
from .tui_cmd import tui

__all__ = ["app", "main"]

_help_style()

app = typer.Typer(
    name="jobbudget",
    help="Exact job costs, budgets and graduated enforcement (allow, warn, throttle, block) "
    "for multi-tenant job queues.  Start with `jobbudget demo`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance: schema upgrades and retention.", no_args_is_help=True)
BLOCK_EXIT = 3


def _where(config: Config) -> str:
    url = config.redacted_url()
    if url.startswith("sqlite:///"):
        return f"{url} (file {Path(url[len('sqlite:///') :]).resolve()})"
    return url


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jobbudget {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Exact job costs, budgets and graduated enforcement for multi-tenant job queues."""


def init(config: ConfigOption = None, database_url: DatabaseOption = None, json: JsonOption = False) -> None:
    """Create the database (or bring its schema up to date) and say where it is."""
    settings = Settings(config, database_url, json)
    with cli_errors(), _open_service(settings, creates=True) as service:
        where = _where(service.config)
        version = service.get_cost_model_version()
    if json:
        emit_json({"database": service.config.redacted_url(), "cost_model_version": version, "ready": True})
    else:
        out_console().print(f"Database ready: {escape(where)}; cost model version {version}.")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, database_url: DatabaseOption = None, json: JsonOption = False) -> None:
    """Apply pending schema migrations (safe to run repeatedly)."""
    settings = Settings(config, database_url, json)
    with cli_errors(), _open_service(settings, creates=True) as service:
        where = _where(service.config)
    if json:
        emit_json({"database": service.config.redacted_url(), "upgraded": True})
    else:
        out_console().print(f"Database schema is up to date: {escape(where)}.")


@db_app.command("prune")
def db_prune(config: ConfigOption = None, database_url: DatabaseOption = None, json: JsonOption = False) -> None:
    """Delete old rows as the retention settings say.

    Per-job rows older than raw_retention_days and daily rows older than
    retention_days (see the configuration) are deleted; exact daily statistics are kept.
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), _open_service(settings) as service:
        result = service.prune()
        raw, daily = service.config.raw_retention_days, service.config.retention_days
    if json:
        emit_json(result)
    else:
        out_console().print(
            f"Deleted {result.jobs_deleted} job rows (older than {raw} days) and "
            f"{result.daily_rows_deleted} daily rows (older than {daily} days)."
        )


def check(
    tenant: Annotated[str, typer.Argument(help="Tenant submitting the job.", show_default=False)],
    queue: Annotated[str, typer.Argument(help="Queue of the job (omit for tenant-wide budgets only).")] = "",
    priority: Annotated[
        int, typer.Option(min=0, max=10, help="Job priority; at or above a budget's emergency priority it bypasses.")
    ] = 5,
    label: LabelOption = None,
    at: AtOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Decide admission of a job: allow, warn, throttle or block.

    The answer is the most restrictive action of every active budget covering the
    tenant (tenant-wide budgets, and its teams' and organisation's), the queue and the
    job's --label's.  Exit status 0 for allow, warn and throttle, 3 for block.
    """
    settings = Settings(config, database_url, json)
    with cli_errors({"labels": "--label"}), _open_service(settings, clock=fixed_clock(at)) as service:
        action = service.check_budget_compliance(tenant, queue, priority, labels=parse_labels(label))
    if json:
        emit_json(action)
    else:
        out_console().print(action_text(action))
    if action.type == "block":
        raise typer.Exit(BLOCK_EXIT)


def status(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's budgets.")] = None,
    at: AtOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Show every active budget with its spend, utilization and status.

    One row per budget: spend in the current period against its amount, a
    utilization bar and the status a new job would get (OK, Warning, Throttle, Block).
    """
    settings = Settings(config, database_url, json)
    with cli_errors(), _open_service(settings, clock=fixed_clock(at)) as service:
        statuses = [service.get_budget_status(str(b.id)) for b in service.list_budgets(tenant)]
    if json:
        emit_json([status_json(s) for s in statuses])
    elif not statuses:
        out_console().print("No active budgets. Create one with `jobbudget budget create --tenant T --amount A`.")
    else:
        console = out_console()
        console.print(status_table(statuses, width=console.width))


def demo(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="Where the demo writes (default sqlite:///jobbudget-demo.db). JOBBUDGET_DATABASE_URL and the "
            "config's database_url are ignored so the demo never touches your real database.",
            show_default=False,
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh/--keep", help="Delete the demo database file first (default), or keep it.")
    ] = True,
    tui: Annotated[bool, typer.Option("--tui", help="Open the terminal UI on the demo's data afterwards.")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Replay a real grid workload against budgets, on a demo database.

    Reads the MetaCentrum trace alea_wagap-2013.swf shipped in the package (17,900
    jobs, Jan-Mar 2013), gives its costliest tenants and queues monthly budgets of
    80-120 % of their March spend, and replays the jobs in time order: each job is
    checked when submitted (blocked jobs never run) and priced at GCP list prices
    when it finishes.  Should the trace be missing, a clearly labelled synthetic
    workload with a fixed seed is replayed instead.
    """
    from ..demo import DEFAULT_DATABASE_URL, run_demo

    settings = Settings(config, None, json)
    with cli_errors():
        report = run_demo(database_url or DEFAULT_DATABASE_URL, fresh=fresh, config=settings.build_config())
    if json:
        emit_json(
            {
                "source": report.source,
                "synthetic": report.synthetic,
                "database": report.database_url,
                "month": {"start": report.month_start, "end": report.month_end},
                "jobs": report.jobs,
                "skipped": report.skipped,
                "outcomes": report.outcomes,
                "billed": report.billed,
                "still_running": report.still_running,
                "total_cost": report.total_cost,
                "top_spender": report.top_spender,
                "budgets": [status_json(s) for s in report.statuses],
                "queue_spend": report.queue_spend,
                "seconds": round(report.seconds, 3),
                "dashboard_key": report.dashboard_key,
            }
        )
        return
    console = out_console()
    if report.synthetic:
        console.print(
            "[bold yellow]SYNTHETIC WORKLOAD[/bold yellow]: the MetaCentrum trace was not found; "
            f"replaying a made-up {report.source} instead. Set JOBBUDGET_DATA_DIR to use the real one."
        )
    else:
        console.print(
            f"Replaying the MetaCentrum trace {escape(report.source)} (real jobs; {report.skipped} never ran)."
        )
    o = report.outcomes
    console.print(
        f"{report.jobs:,} jobs checked at submission: [green]{o['allow']:,} allowed[/green], "
        f"[yellow]{o['warn']:,} warned[/yellow], [dark_orange]{o['throttle']:,} throttled[/dark_orange], "
        f"[bold red]{o['block']:,} blocked[/bold red] (never ran), "
        f"[magenta]{o['bypass']:,} emergency bypasses[/magenta]."
    )
    console.print(
        f"{report.billed:,} finished jobs billed, total {money(report.total_cost)} USD; "
        f"{report.still_running:,} were still running at the end of {report.month_start:%B %Y} (not billed)."
    )
    month = f"{report.month_start:%B %Y}"
    console.print(status_table(report.statuses, title=f"Budgets at the end of {month}", width=console.width))
    if report.report is not None:
        from ..render.text import report_renderable

        console.print(report_renderable(report.report, width=min(console.width, 110)))
    url = f" --database-url {report.database_url}"
    at = f" --at {report.month_end}T23:59:59Z"
    tenant = report.top_spender
    me = command_name()
    console.print(
        f"Done in {report.seconds:.1f} s. Look around (--at looks at {month}; without it you see today's "
        f"empty period):\n"
        f"  {me} tui{url}{at}                     # the terminal UI on the same data\n"
        f"  {me} report {tenant} --period {report.month_start:%Y-%m} --format html -o demo-report.html{url}{at}\n"
        f"  {me} status{url}{at}\n"
        f"  {me} check {tenant} {_first_queue(report)}{url}{at}\n"
        f"The web dashboard on the same data (--at runs the server's clock from noon of {report.month_end}):\n"
        f"  {me} serve{url} --at {report.month_end}T12:00:00Z\n"
        f"then open http://127.0.0.1:8080/ and sign in with this admin key of the demo database:\n"
        f"  {report.dashboard_key}",
        markup=False,
    )
    if tui:
        from .tui_cmd import local_app

        with local_app(Settings(config, report.database_url, False), at=f"{report.month_end}T23:59:59Z") as app:
            app.run()


def _first_queue(report: DemoReport) -> str:
    return report.queue_spend[0].queue_name if report.queue_spend else "QUEUE"


# --help lists the commands in groups, in the order a new user meets them
_START, _BUDGETS, _JOBS, _REPORTS, _ALERTS, _ADMIN = "Start", "Budgets", "Jobs", "Reports", "Alerts", "Admin"
app.command("demo", rich_help_panel=_START)(demo)
app.command("init", rich_help_panel=_START)(init)
app.command("tui", rich_help_panel=_START)(tui)
budget_app.command("raise")(raise_budget)
app.add_typer(budget_app, name="budget", rich_help_panel=_BUDGETS)
app.add_typer(tree_app, name="tree", rich_help_panel=_BUDGETS)
app.command("status", rich_help_panel=_BUDGETS)(status)
app.command("check", rich_help_panel=_BUDGETS)(check)
app.command("ingest", rich_help_panel=_JOBS)(ingest)
app.command("import", rich_help_panel=_JOBS)(import_jobs)
app.command("refund", rich_help_panel=_JOBS)(refund)
app.command("adjust", rich_help_panel=_JOBS)(adjust)
app.command("adjustments", rich_help_panel=_REPORTS)(adjustments)
app.command("report", rich_help_panel=_REPORTS)(report)
app.command("forecast", rich_help_panel=_REPORTS)(forecast)
app.command("forecast-accuracy", rich_help_panel=_REPORTS)(forecast_accuracy)
app.command("calibrate", rich_help_panel=_REPORTS)(calibrate)
app.add_typer(alerts_app, name="alerts", rich_help_panel=_ALERTS)
app.add_typer(notify_app, name="notify", rich_help_panel=_ALERTS)
app.command("serve", rich_help_panel=_ADMIN)(serve)
app.add_typer(costmodel_app, name="costmodel", rich_help_panel=_ADMIN)
app.add_typer(apikey_app, name="apikey", rich_help_panel=_ADMIN)
app.add_typer(db_app, name="db", rich_help_panel=_ADMIN)
app.add_typer(slurm_app, name="slurm", rich_help_panel=_ADMIN)


def main() -> None:
    """Console-script entry point."""
    app()
