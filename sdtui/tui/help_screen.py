"""F1 / ?: every key of the app, as bound now (config rebinds included)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from sdtui.tui.keys import KEY_ACTIONS, LIST_KEYS


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen #help-body {
        width: 90%;
        max-width: 96;
        height: auto;
        max-height: 90%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,f1,q,question_mark", "dismiss", "Close", show=True)]

    def __init__(self, keys: dict[str, str]) -> None:
        super().__init__()
        self.keys = keys  # action -> key(s) as bound now

    def compose(self) -> ComposeResult:
        table = Table(title="sdtui keys", expand=True, show_edge=False)
        table.add_column("Key", style="bold", no_wrap=True, width=18)
        table.add_column("Action")
        for action in KEY_ACTIONS:
            table.add_row(self.keys.get(action.action, action.key), action.help)
        for keys, what in LIST_KEYS:
            table.add_row(keys, what)
        with VerticalScroll(id="help-body"):
            yield Static(table)
            yield Static(
                "Escape closes. Change keys in the [keys] table of the config file.",
                markup=False,
            )
