"""The help screen: every key, generated from the binding table."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from lossmon.show.keys import BUILTIN_KEYS, KEYS


def help_table() -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for key in KEYS:
        table.add_row(Text(key.label), Text(key.description))
    for label, description in BUILTIN_KEYS:
        table.add_row(Text(label), Text(description))
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the keys; any of Esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("lossmon watch — keys", style="bold"))
            yield Static(help_table(), id="help-table")
            yield Static(Text("Esc closes.", style="dim"))
