"""The gallery screens' keys: one table for the footer, the help screen and the palette."""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from sdtui.tui.keys import KeyAction, keys_for, scoped_bindings

# Not priority bindings (but "/"): letters typed in the search field stay there.
GALLERY_KEYS: tuple[KeyAction, ...] = (
    # A priority key: it moves the focus before the keys typed right after it
    # arrive, so "/dragon" typed in one burst is a search, never "d" (delete).
    KeyAction("search", "slash", "Search", "Search prompts as you type (enter or ↓ back to list)"),
    KeyAction("open", "enter", "Open", "Show the image large with all its settings", True, False),
    KeyAction("favorite", "f", "Fav", "Mark or unmark the image as a favourite", True, False),
    KeyAction("copy", "c", "Copy", "Copy the settings (A1111 parameters text)", True, False),
    KeyAction("remix", "r", "Remix", "Load the settings into the prompt editor", True, False),
    KeyAction("img2img", "i", "Img2img", "Start img2img from the image", True, False),
    KeyAction("upscale", "x", "Upscale", "Upscale into a new gallery image", True, False),
    KeyAction("delete", "delete,d", "Del", "Move the image to the trash", True, False),
    KeyAction("undo", "u", "Undo", "Put the last deleted image back", True, False),
    KeyAction("mark", "space", "Mark", "Pick the image to compare with another", True, False),
    KeyAction(
        "compare",
        "equals_sign",
        "Compare",
        "Compare the marked and highlighted images",
        True,
        False,
    ),
    KeyAction(
        "toggle_grid", "g", "Grid", "Switch between the list and the thumbnail grid", True, False
    ),
    KeyAction("favorites_only", "asterisk", "Favs", "Show only favourites", True, False),
    KeyAction(
        "pick_model", "m", "Model", "Show one model's images (pick from a list)", True, False
    ),
    KeyAction("cycle_period", "t", "Date", "Show today, 7, 30 or 365 days", True, False),
    KeyAction("toggle_sort", "o", "Sort", "Newest or oldest first", True, False),
    KeyAction("back", "escape", "Back", "Leave the search field, or the gallery", True, False),
    KeyAction("help", "f1,question_mark", "Help", "Show the gallery keys", True, False),
)

DETAIL_KEYS: tuple[KeyAction, ...] = (
    # Priority: the scrolling settings pane would take ← → for itself.
    KeyAction("previous", "left", "Newer", "Show the image before it in the list"),
    KeyAction("next", "right", "Older", "Show the image after it in the list"),
    KeyAction("favorite", "f", "Fav", "Mark or unmark the image as a favourite", True, False),
    KeyAction("copy", "c", "Copy", "Copy the settings (A1111 parameters text)", True, False),
    KeyAction("remix", "r", "Remix", "Load the settings into the prompt editor", True, False),
    KeyAction("img2img", "i", "Img2img", "Start img2img from the image", True, False),
    KeyAction("upscale", "x", "Upscale", "Upscale into a new gallery image", True, False),
    KeyAction("back", "escape,q", "Back", "Back to the gallery list", True, False),
)


# Each table's scope: its bindings' ids are "gallery.remix", "detail.remix", so the
# config's [keys.gallery] and [keys.detail] rebind that screen's keys only.
SCOPES: dict[str, tuple[KeyAction, ...]] = {"gallery": GALLERY_KEYS, "detail": DETAIL_KEYS}


def bindings(keys: tuple[KeyAction, ...]) -> list[Binding]:
    scope = next(name for name, table in SCOPES.items() if table is keys)
    return scoped_bindings(scope, keys)


def bound_keys(app: Any, scope: str) -> dict[str, str]:
    """action -> key(s) of one gallery screen as bound now (config rebinds included)."""
    return keys_for(scope, SCOPES[scope], getattr(app, "keymap_now", {}))


def _key_label(key: str) -> str:
    names = {"slash": "/", "equals_sign": "=", "asterisk": "*", "question_mark": "?"}
    return " / ".join(names.get(part, part) for part in key.split(","))


class GalleryHelpScreen(ModalScreen[None]):
    """Every gallery key, as the footer shows them, with a line each."""

    BINDINGS = [Binding("escape,f1,q,question_mark", "dismiss", "Close", show=True)]
    DEFAULT_CSS = """
    GalleryHelpScreen {
        align: center middle;
    }
    GalleryHelpScreen > VerticalScroll {
        width: 90;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        table = Table(title="Gallery keys", expand=True, show_edge=False)
        table.add_column("Key", style="bold", no_wrap=True)
        table.add_column("Action")
        keys = bound_keys(self.app, "gallery")
        for action in GALLERY_KEYS:
            table.add_row(_key_label(keys[action.action]), action.help)
        table.add_row("↑ ↓ / j k, pgup pgdn home end", "Move through the list (or the mouse wheel)")
        detail = bound_keys(self.app, "detail")
        table.add_row("In the large view", "", style="bold")
        for action in DETAIL_KEYS:
            table.add_row(_key_label(detail[action.action]), action.help)
        with VerticalScroll():
            yield Static(table)
            yield Static("Escape closes.", markup=False)


class GalleryCommands(Provider):
    """The gallery actions in the command palette (ctrl+p) while the gallery is open."""

    def _commands(self) -> list[tuple[str, str, str]]:
        keys = bound_keys(self.app, "gallery")
        return [
            (
                f"Gallery: {k.description}",
                escape(f"{k.help}  [{_key_label(keys[k.action])}]"),
                k.action,
            )
            for k in GALLERY_KEYS
            if k.action not in ("back", "help")
        ]

    async def discover(self) -> Hits:
        for name, help_text, action in self._commands():
            yield DiscoveryHit(name, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(name),
                    partial(self.screen.run_action, action),
                    help=help_text,
                )
