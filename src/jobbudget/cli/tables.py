"""Tables that fit the terminal without cutting what matters.

Money, names and ids are never cut or folded: when a table is too wide, the least
important columns are left out first (each column has a rank: 0 is always shown);
when even the rank-0 columns do not fit, every row is shown as a stacked block of
``label  value`` lines instead.  Other cells wrap at word boundaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "fit_table"]

Cell = str | Text
_EDGE = 4  # a table's left and right border with their padding
_BETWEEN = 3  # a column separator with its padding


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its header, how expendable it is (0: never left out), whether its
    cells may wrap (``keep``: money, names and ids never do) and its alignment."""

    header: str
    rank: int = 0
    keep: bool = False
    justify: str = "left"


def _width(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return max((len(line) for line in text.split("\n")), default=0)


def _least(cell: Cell) -> int:
    """The narrowest a wrapping cell can be: its longest word."""
    text = cell.plain if isinstance(cell, Text) else cell
    return max((len(word) for word in text.split()), default=0)


def _need(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], shown: Sequence[int]) -> int:
    total = _EDGE + _BETWEEN * (len(shown) - 1)
    for i in shown:
        col = columns[i]
        measure = _width if col.keep else _least
        total += max([len(col.header) if col.keep else _least(col.header), *(measure(r[i]) for r in rows)])
    return total


def fit_table(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *, width: int, title: str = ""
) -> RenderableType:
    """``rows`` as a table within ``width`` columns of the terminal (see the module
    docs); ``Text`` cells keep their style."""
    shown = list(range(len(columns)))
    for rank in sorted({c.rank for c in columns if c.rank > 0}, reverse=True):
        if _need(columns, rows, shown) <= width:
            break
        shown = [i for i in shown if columns[i].rank != rank]
    if _need(columns, rows, shown) > width:
        return _stacked(columns, rows, title)
    table = Table(title=title or None, title_justify="left")
    for i in shown:
        col = columns[i]
        table.add_column(
            col.header,
            justify=col.justify,  # type: ignore[arg-type]  # "left" | "right" | "center"
            no_wrap=col.keep,
            min_width=max(_width(r[i]) for r in rows) if col.keep and rows else None,
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


def _stacked(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], title: str) -> RenderableType:
    """One block of ``label  value`` lines a row: nothing is left out or cut."""
    blocks: list[RenderableType] = [Text(title, style="italic")] if title else []
    for row in rows:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for col, cell in zip(columns, row, strict=True):
            grid.add_row(col.header, cell)
        blocks += [grid, Text("")]
    return Group(*blocks)
