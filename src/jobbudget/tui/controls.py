"""Placeholder: replaced by the real pane."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.containers import Vertical

if TYPE_CHECKING:
    from .app import TuiData

__all__ = ["ControlsPane"]


class ControlsPane(Vertical):
    def show(self, data: TuiData) -> None:
        pass

    def reload(self) -> None:
        pass
