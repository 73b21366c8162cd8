"""``--help`` of every command reads like a usage a person knows: no ``<bool>`` after a
flag, no ``<str>`` after a value, arguments as ``TENANT`` / ``[QUEUE]`` (not
``{tenant}``), and the top-level commands in groups."""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.testing import CliRunner

from jobbudget.cli import app

runner = CliRunner()


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if hasattr(command, "commands"):  # a group of commands
            found += _commands(command, path)
    return found


def test_every_help_reads_without_typer_type_tags() -> None:
    paths = _commands(typer.main.get_command(app))
    assert len(paths) > 30
    for path in [(), *paths]:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.output)
        text = result.output
        assert not re.search(r"<(bool|str|int|float|path|int range|float range)>", text), (path, text)
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "{" not in usage, (path, usage)


def test_top_level_commands_are_grouped() -> None:
    text = runner.invoke(app, ["--help"], env={"COLUMNS": "100"}).output
    panels = re.findall(r"─ (\w+) ─", text)
    assert panels == ["Options", "Start", "Budgets", "Jobs", "Reports", "Admin", "Alerts"]
    check = runner.invoke(app, ["check", "--help"], env={"COLUMNS": "100"}).output
    assert "Usage: jobbudget check [OPTIONS] TENANT [QUEUE]" in check
