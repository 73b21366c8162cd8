"""What every command shares: the --config/--database-url/--json options, building
the service, printing JSON, and turning errors into ``error [CODE]: message``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..config import Config
from ..domain.codec import to_jsonable
from ..domain.errors import JobBudgetError, ValidationError, error_code
from ..domain.money import parse_decimal
from ..domain.validation import parse_instant
from ..ports import Clock
from ..service import MAX_BATCH, BudgetService

__all__ = [
    "AtOption",
    "BatchSizeOption",
    "ConfigOption",
    "DatabaseOption",
    "JsonOption",
    "Settings",
    "StrictOption",
    "cli_errors",
    "emit_json",
    "err_console",
    "fixed_clock",
    "open_service",
    "out_console",
    "parse_at",
    "parse_date",
    "parse_number",
]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="JOBBUDGET_CONFIG",
        dir_okay=False,
        metavar="PATH",
        help="YAML configuration file (its keys: docs/configuration.md).",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="JOBBUDGET_DATABASE_URL",
        metavar="URL",
        help="Database: sqlite:///FILE or postgresql://USER@HOST/DB; overrides the config file. "
        "Default: sqlite:///jobbudget.db.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one machine-readable JSON document on stdout instead of text."),
]

BatchSizeOption = Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Jobs stored per transaction.")]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Read the whole file first and store nothing if any line is bad.")
]

AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="TIME",
        help="Evaluate as of this instant instead of now (ISO-8601 with offset, e.g. 2013-03-31T23:59:59Z); "
        "useful to look at the demo's budgets of March 2013.",
        show_default=False,
    ),
]

_URL_PREFIXES = ("sqlite:", "postgresql", "postgres:", "memory:")


@dataclass(frozen=True, slots=True)
class Settings:
    """The three options every command takes."""

    config_path: Path | None
    database_url: str | None
    json: bool = False

    def build_config(self) -> Config:
        config = Config.from_yaml(self.config_path) if self.config_path is not None else Config()
        if self.database_url:
            if not self.database_url.startswith(_URL_PREFIXES):
                raise _not_a_url(self.database_url)
            config = config.model_copy(update={"database_url": self.database_url})
        return config


def _not_a_url(given: str) -> ValidationError:
    """A --database-url that is not one: a plain path is shown as given (with the URL it
    likely meant); anything with ``://`` only up to it (it may hold a password)."""
    if "://" not in given and "@" not in given:
        path = Path(given).expanduser()
        return ValidationError(
            "--database-url",
            given,
            f"must be a URL: for this SQLite file write sqlite:///{path} (also postgresql://USER@HOST/DB)",
        )
    return ValidationError(
        "--database-url", given.split("://", 1)[0] + "://...", "must be sqlite:///FILE, postgresql://... or memory://"
    )


def command_name() -> str:
    """How to type this command again: ``jobbudget`` when that is on the PATH and is
    this program, else the path it was started by (``.venv/bin/jobbudget`` after
    ``make demo``, before the venv is activated)."""
    started = Path(sys.argv[0])
    if started.name != "jobbudget":  # python -m, or a test runner: the name people type
        return "jobbudget"
    found = shutil.which("jobbudget")
    if found is not None and Path(found).resolve() == started.resolve():
        return "jobbudget"
    try:
        return str(started.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(started)


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for any other database)."""
    if not url.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    return Path(name).expanduser() if name and name != ":memory:" else None


def require_database(config: Config, *, creates: bool = False) -> None:
    """A SQLite file that is not there is refused, naming it: a mistyped
    ``--database-url`` would otherwise make an empty database and answer from it.  A
    command that ``creates`` (``init``, and writes such as ``budget create``) makes it,
    and says so on stderr."""
    path = sqlite_file(config.database_url)
    if path is None or path.exists():
        return
    if not creates:
        raise ValidationError(  # the whole path in the reason: a value is shortened, a path must not be
            "--database-url",
            None,
            f"there is no database file at {path}: create it with `jobbudget init` (or check the path)",
        )
    err_console().print(f"Creating a new database: {path.resolve()}", markup=False)


@contextlib.contextmanager
def open_service(settings: Settings, *, clock: Clock | None = None, creates: bool = False) -> Iterator[BudgetService]:
    """The service for one command, closed (buffered audit entries written) afterwards.
    A SQLite file must exist unless the command ``creates`` it (see :func:`require_database`)."""
    config = settings.build_config()
    require_database(config, creates=creates)
    with BudgetService(config, clock=clock) as service:
        yield service


def _width() -> int | None:
    # Pipes and test runners get wide lines so tables are not cut; terminals use their size.
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160


def out_console() -> Console:
    return Console(width=_width(), highlight=False)


def err_console() -> Console:
    return Console(stderr=True, width=_width(), highlight=False)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON (Decimals as exact strings, dates in ISO form)."""
    typer.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


@contextlib.contextmanager
def cli_errors(options: Mapping[str, str] | None = None) -> Iterator[None]:
    """Print jobbudget errors as ``error [CODE]: message`` on stderr and exit with 2
    (invalid input) or 1 (anything else); never a traceback.  ``options`` names the
    command-line option behind a field (``{"amount": "--amount"}``; the longest
    matching prefix wins), so a user reads the option they typed."""
    try:
        yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except ValidationError as exc:
        _fail(exc.code, str(_as_option(exc, options or {})), 2)
    except JobBudgetError as exc:
        _fail(error_code(exc), str(exc), 1)
    except KeyboardInterrupt:
        _fail("INTERRUPTED", "interrupted", 130)
    except Exception as exc:  # a bug or an unexpected driver error: still no traceback
        if os.environ.get("JOBBUDGET_DEBUG"):
            raise
        _fail("INTERNAL", f"{type(exc).__name__}: {exc} (set JOBBUDGET_DEBUG=1 for a traceback)", 1)


def _as_option(exc: ValidationError, options: Mapping[str, str]) -> ValidationError:
    for field in sorted(options, key=len, reverse=True):
        if exc.field == field or exc.field.startswith(field + "."):
            return ValidationError(options[field], exc.value, exc.reason)
    return exc


def _fail(code: str, message: str, exit_code: int) -> None:
    typer.echo(f"error [{code}]: {message}", err=True)
    raise typer.Exit(exit_code)


def parse_number(field: str, text: str) -> Decimal:
    """A number given on the command line, read exactly (never through float)."""
    try:
        return parse_decimal(text)
    except (TypeError, ValueError):
        raise ValidationError(field, text, "must be a number such as 1500 or 0.75") from None


def fixed_clock(at: str | None) -> Clock | None:
    """A clock stopped at ``at`` (None: the real clock)."""
    instant = parse_at(at)
    return None if instant is None else lambda: instant


def parse_at(at: str | None) -> datetime | None:
    """The ``--at`` instant in UTC (None: now)."""
    return None if at is None else parse_instant("at", at).astimezone(UTC)


def parse_date(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, text, "must be a date YYYY-MM-DD") from None
