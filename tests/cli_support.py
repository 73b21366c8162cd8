"""The CLI in tests: through CliRunner on a SQLite file, failing the test on a
traceback.  The fixtures that use it (``cli_env``, ``seed_prices``, ``db``, ``run``)
are in conftest.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from typer.testing import CliRunner, Result

from jobbudget.cli import app

__all__ = ["CLI_VARIABLES", "Run", "as_json", "checked", "cli_on", "json_of", "runner"]

runner = CliRunner()
Run = Callable[..., Result]
#: Variables of the machine's that would point the CLI at another database, file or data.
CLI_VARIABLES = (
    "JOBBUDGET_DATABASE_URL",
    "JOBBUDGET_CONFIG",
    "JOBBUDGET_DEBUG",
    "JOBBUDGET_DATA_DIR",
    "JOBBUDGET_SMTP_PASSWORD",
)


def checked(result: Result) -> Result:
    """``result``, after failing the test if the command crashed."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def cli_on(database: str, *, init: bool = True) -> Run:
    """The CLI on ``database`` (made with `jobbudget init` first, as the README says,
    unless not ``init``).  ``run(*args)`` adds ``--database-url`` (``database=None``
    leaves it out, another URL replaces it) and passes ``input`` and ``env`` on."""
    if init:
        assert runner.invoke(app, ["init", "--database-url", database]).exit_code == 0

    def run(
        *args: str, input: str | None = None, database: str | None = database, env: Mapping[str, str] | None = None
    ) -> Result:
        extra = ["--database-url", database] if database else []
        return checked(runner.invoke(app, [*args, *extra], input=input, env=env))

    return run


def as_json(result: Result) -> Any:
    """The JSON output of a command that succeeded."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def json_of(result: Result) -> Any:
    """The JSON output of a command, whether it succeeded or not (errors are JSON too
    with ``--json``)."""
    return json.loads(result.stdout)
