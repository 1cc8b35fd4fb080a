"""A dialog to choose the prompt styles applied to each generation (several nest in order)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from sdtui.prompts.styles import StyleCatalog, load_styles


class StyleList(SelectionList[str], inherit_bindings=False):
    """A selection list where only Space ticks: Enter is left to the dialog (apply)."""

    BINDINGS = [
        Binding("down", "cursor_down", show=False),
        Binding("up", "cursor_up", show=False),
        Binding("home", "first", show=False),
        Binding("end", "last", show=False),
        Binding("pagedown", "page_down", show=False),
        Binding("pageup", "page_up", show=False),
        Binding("space", "tick", "Tick", show=False),
    ]

    def action_tick(self) -> None:
        # Toggle now, not through the list's "selected" message, which toggles
        # whatever is highlighted when it is handled: keys typed in a burst
        # (over SSH) would otherwise tick the wrong line.
        if self.highlighted is not None:
            self.toggle(self.get_option_at_index(self.highlighted))


class StylePickerScreen(ModalScreen["list[str] | None"]):
    """Space toggles a style, Enter applies the ticked ones (in the order ticked),
    Escape leaves the styles as they were."""

    DEFAULT_CSS = """
    StylePickerScreen { align: center middle; }
    StylePickerScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    StylePickerScreen SelectionList { height: auto; max-height: 16; }
    StylePickerScreen #style-detail { color: $text-muted; height: auto; max-height: 6; }
    """
    BINDINGS = [
        Binding("escape", "close", "Cancel"),
        # Not a priority binding, so it runs in turn after keys typed just before it.
        Binding("enter", "apply", "Apply"),
        Binding("delete", "clear", "None"),
    ]

    def __init__(self, selected: list[str], catalog: StyleCatalog | None = None) -> None:
        super().__init__()
        self.catalog = catalog or load_styles()
        self.order = [name for name in selected if name in self.catalog.styles]

    def compose(self) -> ComposeResult:
        styles = sorted(self.catalog.styles.values(), key=lambda s: s.name)
        with Vertical():
            yield Label("Styles  (space ticks · enter applies · delete clears · escape cancels)")
            yield StyleList(
                *(
                    Selection(Text(f"{s.name}  {s.description}"), s.name, s.name in self.order)
                    for s in styles
                ),
                id="styles",
            )
            yield Static("", id="style-detail", markup=False)
            if self.catalog.problems:
                yield Static(
                    "skipped: " + "; ".join(self.catalog.problems),
                    id="style-problems",
                    markup=False,
                )

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def on_selection_list_selection_highlighted(
        self, event: SelectionList.SelectionHighlighted
    ) -> None:
        style = self.catalog.styles.get(event.selection.value)
        if style is None:
            return
        detail = f"{style.template}"
        if style.negative:
            detail += f"\nnegative: {style.negative}"
        if style.settings:
            detail += "\nsettings: " + ", ".join(f"{k}={v}" for k, v in style.settings.items())
        self.query_one("#style-detail", Static).update(detail)

    def action_apply(self) -> None:
        ticked = list(self.query_one(SelectionList).selected)  # in the order ticked
        kept = [name for name in self.order if name in ticked]
        self.dismiss(kept + [name for name in ticked if name not in kept])

    def action_clear(self) -> None:
        self.query_one(SelectionList).deselect_all()
        self.order.clear()

    def action_close(self) -> None:
        self.dismiss(None)
