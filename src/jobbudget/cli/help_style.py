"""How ``--help`` reads.  Typer prints ``<bool>`` after every flag, ``<str>`` after
every value and ``{tenant}`` for a required argument; jobbudget's help reads like the
usage lines people know instead: a flag alone, a value by its name (``URL``, ``TIME``,
else the type in capitals: ``INTEGER``), arguments as ``TENANT`` and ``[QUEUE]``.

Applied once, by :mod:`jobbudget.cli.app`, to Typer's parameter classes (the pinned
Typer version is tested by ``tests/test_cli_help.py``)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from typer import _coercion, _display, _param_types, core, rich_utils

__all__ = ["install"]

_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH", "datetime": "TIME"}


def _type_name(shown: str | None) -> str | None:
    if not shown:
        return None
    bare = shown.strip("<>").split(" ", 1)[0]  # "<int range>" -> "int"
    return _TYPE_NAMES.get(bare, bare.upper())


def _option_type(self: Any, ctx: Any) -> str | None:
    if self.is_flag:
        return None
    if self.metavar is not None:
        return str(self.metavar)
    return _type_name(core.TyperOption.display_type(self, ctx))


def _argument_type(self: Any, ctx: Any) -> str | None:
    return None  # the argument's own name says it (TENANT)


def _argument_name(self: Any) -> str:
    name = str(self.metavar or self.name or "").upper()
    return name if self.required else f"[{name}]"


def _argument_usage(self: Any) -> str:
    name = _argument_name(self)
    return name + ("..." if self.nargs != 1 else "")


def _range(self: Any) -> str | None:
    """``0 to 10``, ``at least 0``: not ``0<=x<=10``."""
    low, high = getattr(self, "min", None), getattr(self, "max", None)
    if low is None and high is None:
        return None
    if low is None:
        return f"at most {high}"
    return f"at least {low}" if high is None else f"{low} to {high}"


def _error_message(exc: Any, _typer_message: Any = _display.get_error_msg) -> str:
    """Typer's message for a value it refused, without pydantic's ``Value error, ``."""
    return str(_typer_message(exc)).removeprefix("Value error, ")


def _reflow(paragraphs: list[str], markup_mode: Any = None) -> str:
    """A command's description flows to the terminal's width: the line breaks of the
    docstring join (not ``job_type,`` alone on a line at 80 columns), except in a
    paragraph of list items or indented lines, or one marked ``\\b``."""
    flowed = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        kept = paragraph.startswith("\b") or any(line.startswith((" ", "-", "*", "$")) for line in lines)
        flowed.append(paragraph if kept else " ".join(line.strip() for line in lines))
    return "\n\n".join(flowed)


class _OptionsTable(Table):
    """Typer's options table, whose option names are never cut: in a narrow terminal
    the type and help columns wrap instead (``--emergency-priority``, not
    ``--emergency-prior…``)."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        for item in getattr(renderables[-1], "renderables", ()) if renderables else ():
            if isinstance(item, Text):
                item.overflow = "fold"  # a word longer than the help column breaks, not cut
        super().add_row(*renderables, **kwargs)
        for column in self.columns[:-2]:  # all but the type and the help
            column.no_wrap = True


def install() -> None:
    """Set the help style on Typer's option and argument classes (idempotent)."""
    if getattr(core.TyperOption, "_jobbudget_help", False):
        return
    core.TyperOption.display_type_rich = _option_type  # type: ignore[method-assign]
    core.TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign]
    core.TyperArgument._usage_display_name = _argument_usage  # type: ignore[method-assign]
    core.TyperArgument._rich_display_name = lambda self: str(self.metavar or self.name or "").upper()  # type: ignore[method-assign]
    core.TyperOption._get_number_range_help_str = _range  # type: ignore[method-assign]
    core.TyperArgument._get_number_range_help_str = _range  # type: ignore[method-assign]
    _coercion.get_error_msg = _error_message  # type: ignore[attr-defined]
    _param_types.get_error_msg = _error_message  # type: ignore[attr-defined]
    rich_utils._fix_linebreaks = _reflow
    rich_utils.Table = _OptionsTable  # type: ignore[attr-defined]
    core.TyperOption._jobbudget_help = True  # type: ignore[attr-defined]
