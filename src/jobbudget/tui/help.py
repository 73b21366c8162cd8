"""The ``?`` screen: every key of every tab."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HELP_TEXT", "HelpScreen"]

HELP_TEXT = """\
[b]jobbudget: keys[/b]

[b]Everywhere[/b]
  1 2 3 4 5   Overview, Trends, Controls, Alerts, Platform
  r           refresh now (it also refreshes by itself every second when data changed)
  ?           this help          q   quit
  Tab         next field or table; the mouse works too
  Escape      leave a text field (while in one, 1-5 and letters type into it)

[b]1 Overview[/b]   every budget and the month's top cost drivers
  /           filter by tenant (Escape clears)
  s           sort by the next column    Enter  open the budget in Trends

[b]2 Trends[/b]     30 days of daily spend for the selected budget
  [ ]         previous / next budget
  the chart shows the daily pace that would spend the budget exactly, and the
  forecast band of the rest of the period

[b]3 Controls[/b]   create, edit and deactivate budgets
  n           new budget     e or Enter  edit the selected budget     Ctrl+S  save
  errors show next to the field; nothing is saved until every field is valid
  t           send a test message through the channel on the cursor line

[b]4 Alerts[/b]     active violations and history
  a           acknowledge the selected alert
  h           show history / active only
  the panel below shows each channel's delivery status

[b]5 Platform[/b]   the organisation tree, refunds and corrections
  f           refund the job named in the form (once per job)
  c           credit (negative amount) or debit the tenant in the form

Press Escape or ? to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 84; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(HELP_TEXT, id="help-text")
