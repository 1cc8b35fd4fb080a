"""Dialogs for settings presets: pick one to apply, or save the current settings by name."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from sdtui.errors import SdtuiError
from sdtui.params import GenerationRequest
from sdtui.prompts.presets import Preset, load_presets, save_preset

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 80%; max-width: 100; height: auto; max-height: 80%;
    border: round $accent; background: $surface; padding: 0 1;
}}
{name} #preset-note {{ color: $text-muted; }}
{name} OptionList {{ height: auto; max-height: 16; }}
"""


def _describe(preset: Preset) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in preset.settings.items())
    return f"{preset.name}  {settings}"


class PresetPickerScreen(ModalScreen["Preset | None"]):
    """Enter applies the highlighted preset; Escape changes nothing."""

    DEFAULT_CSS = _CSS.format(name="PresetPickerScreen")
    BINDINGS = [Binding("escape", "close", "Cancel")]

    def __init__(self) -> None:
        super().__init__()
        self.presets, self.problems = load_presets()
        self.ordered = sorted(self.presets.values(), key=lambda p: p.name)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Presets  (enter applies · escape cancels)")
            yield OptionList(*(Option(Text(_describe(p))) for p in self.ordered), id="presets")
            note = "; ".join(self.problems) if self.problems else ""
            yield Static(f"skipped: {note}" if note else "", id="preset-note", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.ordered[event.option_index])

    def action_close(self) -> None:
        self.dismiss(None)


class SavePresetScreen(ModalScreen["str | None"]):
    """Type a name and press Enter to save `request`'s settings; dismisses with the path."""

    DEFAULT_CSS = _CSS.format(name="SavePresetScreen")
    BINDINGS = [Binding("escape", "close", "Cancel")]

    def __init__(self, request: GenerationRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical():
            yield Label("Save settings as a preset  (enter saves · escape cancels)")
            yield Static(
                f"{r.model} · {r.scheduler} · {r.steps} steps · CFG {r.cfg:g} · "
                f"{r.width}x{r.height} · {r.count} image(s)",
                markup=False,
            )
            yield Input(placeholder="preset name", id="preset-name")
            yield Static("", id="preset-note", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            path = save_preset(event.value, self.request)
        except SdtuiError as exc:  # bad or taken name: say so and stay open
            self.query_one("#preset-note", Static).update(str(exc))
            return
        self.dismiss(str(path))

    def action_close(self) -> None:
        self.dismiss(None)
