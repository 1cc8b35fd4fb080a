"""A small list to pick one model for the gallery filter (m)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

EVERY_MODEL = "every model"


class ModelPicker(ModalScreen[str | None]):
    """Every model the gallery holds; enter picks, escape keeps the filter as it was.

    Dismisses with the model name, or None for every model.
    """

    BINDINGS = [Binding("escape", "keep", "Keep", show=True)]
    DEFAULT_CSS = """
    ModelPicker { align: center middle; }
    ModelPicker > Label { width: 60; max-width: 90%; padding: 0 1; background: $panel; }
    ModelPicker > OptionList { width: 60; max-width: 90%; height: auto; max-height: 70%; }
    """

    def __init__(self, models: list[str], current: str | None) -> None:
        super().__init__()
        self.models = models
        self.current = current

    def compose(self) -> ComposeResult:
        yield Label("Show the images of one model")
        options = [Option(Text(EVERY_MODEL, style="italic"), id="")]
        options += [Option(Text(model), id=f"m{n}") for n, model in enumerate(self.models)]
        yield OptionList(*options)

    def on_mount(self) -> None:
        picker = self.query_one(OptionList)
        picker.highlighted = (
            self.models.index(self.current) + 1 if self.current in self.models else 0
        )
        picker.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        index = event.option_index
        self.dismiss(None if index == 0 else self.models[index - 1])

    def action_keep(self) -> None:
        self.dismiss(self.current)
