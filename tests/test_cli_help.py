"""``--help`` of every command reads like a usage a person knows: no ``<bool>`` after a
flag, no ``<str>`` after a value, arguments as ``TENANT`` / ``[QUEUE]`` (not
``{tenant}``), and the top-level commands in groups."""

from __future__ import annotations

import re
from typing import Any

import typer

from cli_support import runner
from jobbudget.cli import app


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


def test_every_command_that_can_takes_the_common_options() -> None:
    """The README: most commands take --config, --database-url and --json."""
    import typer.main

    root = typer.main.get_command(app)
    for path in _commands(root):
        command: Any = root
        for name in path:
            command = command.commands[name]
        if hasattr(command, "commands") or path in {("demo",), ("notify", "secret")} or path[0] == "slurm":
            continue  # groups; the demo makes its own database; a secret needs no settings; slurm: --url
        # (the slurm commands run on a Slurm controller and reach the server by --url, not its database)
        options = {opt for param in command.params for opt in getattr(param, "opts", ())}
        assert {"--config", "--database-url"} <= options, path
        if path not in {("serve",), ("tui",)}:
            assert "--json" in options, path


def test_help_in_a_narrow_terminal_cuts_no_option_name() -> None:
    """At 80 columns the help column wraps; option names, types and words are whole
    (not ``--emergency-prior…``), ranges read ``0 to 10`` (not ``0<=x<=10``)."""
    root = typer.main.get_command(app)
    for path in [(), *_commands(root)]:
        text = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}).output
        assert "…" not in text, (path, text)
        assert not re.search(r"<=x|x>=|x<=", text), (path, text)
    create = runner.invoke(app, ["budget", "create", "--help"], env={"COLUMNS": "80"}).output
    assert "--emergency-priority" in create and "--max-bypass-fraction" in create
    assert "[0 to 10]" in create.replace("\n", " ").replace("│", "") or "0 to" in create


def test_a_refused_value_reads_without_pydantic_prefix() -> None:
    result = runner.invoke(app, ["report", "acme", "--format", "xyz"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "'xyz' is not one of 'text'" in result.output and "Value error" not in result.output
