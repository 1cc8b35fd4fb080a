"""A dialog that expands the prompt with the expander model and lets the user pick a version.

The model runs in a worker thread (it imports torch there, never at start-up);
the dialog shows its progress and any failure, and returns the chosen text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from sdtui.errors import SdtuiError
from sdtui.prompts.expand import ExpandSettings, Expansion, expand_prompt

Expander = Callable[[str, ExpandSettings, "int | None"], Expansion]


def _default_expander(prompt: str, settings: ExpandSettings, seed: int | None) -> Expansion:
    return expand_prompt(prompt, settings, seed=seed)


class ExpandScreen(ModalScreen["str | None"]):
    """Pick one expanded version of `prompt`; dismisses with it, or None on Escape."""

    DEFAULT_CSS = """
    ExpandScreen { align: center middle; }
    ExpandScreen > Vertical {
        width: 90%; max-width: 120; height: auto; max-height: 80%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    ExpandScreen #expand-status { color: $text-muted; }
    ExpandScreen OptionList { height: auto; max-height: 20; }
    """
    BINDINGS = [
        Binding("escape", "close", "Cancel"),
        Binding("ctrl+r", "reroll", "Other versions"),
    ]

    def __init__(
        self,
        prompt: str,
        settings: ExpandSettings | None = None,
        seed: int | None = None,
        expander: Expander | None = None,
    ) -> None:
        super().__init__()
        self.prompt = prompt
        self.settings = settings or ExpandSettings()
        self.seed = seed
        self.expander = expander or _default_expander
        self.expansion: Expansion | None = None
        self.error = ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Expand prompt  (enter picks · ctrl+r other versions · escape cancels)")
            yield Static("", id="expand-status", markup=False)
            yield OptionList(id="candidates")

    def on_mount(self) -> None:
        self._start()

    def _start(self) -> None:
        self.query_one(OptionList).clear_options()
        self._set_status(f"expanding with {self.settings.model}…")
        self._expand(self.prompt, self.seed)

    def _set_status(self, text: str) -> None:
        self.query_one("#expand-status", Static).update(text)

    @work(thread=True, exclusive=True, group="expand", exit_on_error=False)
    def _expand(self, prompt: str, seed: int | None) -> None:
        try:
            result: Any = self.expander(prompt, self.settings, seed)
        except SdtuiError as exc:
            result = exc
        except Exception as exc:  # a model that breaks in an unforeseen way
            result = SdtuiError(f"expansion failed: {type(exc).__name__}: {exc}")
        self.app.call_from_thread(self._finished, result)

    def _finished(self, result: Expansion | SdtuiError) -> None:
        if not self.is_attached:
            return  # closed while the model was working
        if isinstance(result, SdtuiError):
            self.error = str(result)
            self._set_status(self.error)
            self.app.notify(self.error, title="Expand", severity="error", markup=False)
            return
        self.expansion = result
        options = self.query_one(OptionList)
        # Model output is shown literally, never read as markup.
        options.add_options([Option(Text(text)) for text in result.candidates])
        if result.candidates:
            self._set_status(f"seed {result.seed} · {len(result.candidates)} versions")
            options.highlighted = 0
            options.focus()
        else:
            self._set_status("the model added nothing; ctrl+r tries other versions")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if self.expansion is not None:
            self.dismiss(self.expansion.candidates[event.option_index])

    def action_reroll(self) -> None:
        self.seed = None if self.expansion is None else (self.expansion.seed + 1) % 2**32
        self.expansion = None
        self._start()

    def action_close(self) -> None:
        self.dismiss(None)
