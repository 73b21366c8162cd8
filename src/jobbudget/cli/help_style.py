"""How ``--help`` reads.  Typer prints ``<bool>`` after every flag, ``<str>`` after
every value and ``{tenant}`` for a required argument; jobbudget's help reads like the
usage lines people know instead: a flag alone, a value by its name (``URL``, ``TIME``,
else the type in capitals: ``INTEGER``), arguments as ``TENANT`` and ``[QUEUE]``.

Applied once, by :mod:`jobbudget.cli.app`, to Typer's parameter classes (the pinned
Typer version is tested by ``tests/test_cli_help.py``)."""

from __future__ import annotations

from typing import Any

from typer import core

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


def install() -> None:
    """Set the help style on Typer's option and argument classes (idempotent)."""
    if getattr(core.TyperOption, "_jobbudget_help", False):
        return
    core.TyperOption.display_type_rich = _option_type  # type: ignore[method-assign]
    core.TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign]
    core.TyperArgument._usage_display_name = _argument_usage  # type: ignore[method-assign]
    core.TyperArgument._rich_display_name = lambda self: str(self.metavar or self.name or "").upper()  # type: ignore[method-assign]
    core.TyperOption._jobbudget_help = True  # type: ignore[attr-defined]
