"""The gallery browser (ctrl+o): every saved image, searched, filtered, opened, compared.

The list is virtual (`GalleryList` + `EntryPages`): it fetches only the pages in
view, so 100,000 images scroll like 100. Thumbnails are the gallery's cached
PNGs, made on a worker thread for the highlighted image only.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from sdtui.errors import SdtuiError
from sdtui.tui.gallery_detail import GalleryCompareScreen, GalleryDetailScreen, image_widget
from sdtui.tui.gallery_grid import GalleryGrid
from sdtui.tui.gallery_keys import (
    GALLERY_KEYS,
    GalleryCommands,
    GalleryHelpScreen,
    bindings,
)
from sdtui.tui.gallery_list import GalleryList
from sdtui.tui.gallery_pages import PERIODS, EntryPages, GalleryFilter
from sdtui.tui.gallery_pick import ModelPicker
from sdtui.tui.gallery_settings import parameters_text, settings_text_short
from sdtui.tui.preview import ImageWidget

SEARCH_DELAY = 0.25  # seconds of quiet typing before the search runs
THUMB_DELAY = 0.08  # holding a key down skips the thumbnails of rows flown past
THUMB_SIZE = 256
# Deletions that can be undone, per gallery folder: (token, file name), newest last.
# Kept for the whole run, so closing and reopening the gallery does not lose them.
_UNDO: dict[str, list[tuple[str, str]]] = {}


@dataclass
class GalleryOpened(Message):
    gallery: Any
    pages: EntryPages


@dataclass
class GalleryOpenFailed(Message):
    error: str


@dataclass
class ThumbnailReady(Message):
    entry_id: int
    image: Any  # a PIL image, or None when there is none to show
    error: str = ""


def _error_text(exc: Exception) -> str:
    return exc.message if isinstance(exc, SdtuiError) else f"{type(exc).__name__}: {exc}"


class GalleryScreen(Screen[None]):
    """Browse the gallery. Built with no arguments it uses the app's own gallery."""

    BINDINGS = [
        *bindings(GALLERY_KEYS),
        Binding("down", "focus_list", "List", show=False),
    ]
    COMMANDS = Screen.COMMANDS | {GalleryCommands}
    DEFAULT_CSS = """
    GalleryScreen #gallery-search { height: 3; margin: 0 1; }
    GalleryScreen #gallery-filters { height: 1; padding: 0 2; color: $text-muted; }
    GalleryScreen #gallery-body { height: 1fr; }
    GalleryScreen GalleryList {
        width: 3fr; height: 1fr; border: round $panel-lighten-2;
    }
    GalleryScreen GalleryList:focus { border: round $primary; }
    GalleryScreen #gallery-grid { display: none; }
    GalleryScreen #gallery-side {
        width: 2fr; min-width: 30; max-width: 70; height: 1fr;
        border: round $panel-lighten-2; align: center top;
    }
    GalleryScreen #gallery-thumb { width: auto; height: 2fr; }
    GalleryScreen #gallery-info { height: 1fr; padding: 0 1; }
    """

    def __init__(self, gallery: Any | None = None) -> None:
        super().__init__()
        self._given_gallery = gallery
        self.gallery: Any | None = None
        self.filters = GalleryFilter()
        self._search_timer: Timer | None = None
        self._thumb_timer: Timer | None = None
        self.changed = False  # favourites or deletions made here: the history reloads
        self.grid_mode = False

    # -- layout and start --------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search prompts  ( / )", id="gallery-search")
        yield Static("", id="gallery-filters")
        with Horizontal(id="gallery-body"):
            yield GalleryList(id="gallery-list")
            yield GalleryGrid(id="gallery-grid")
            with Vertical(id="gallery-side"):
                yield image_widget(self.app, "gallery-thumb")
                yield Static("", id="gallery-info")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Gallery"
        self.list.focus()
        self._open_gallery(self.filters)

    @property
    def list(self) -> GalleryList:
        """The view in use: the list, or the grid of thumbnails."""
        return self.query_one("#gallery-grid" if self.grid_mode else "#gallery-list", GalleryList)

    @property
    def undo_tokens(self) -> builtins.list[tuple[str, str]]:
        root = getattr(self.gallery, "root", None)
        return _UNDO.setdefault(str(root), []) if root is not None else []

    @property
    def search_input(self) -> Input:
        return self.query_one("#gallery-search", Input)

    @property
    def pages(self) -> EntryPages | None:
        return self.list.pages

    @work(thread=True, exit_on_error=False, group="gallery-open")
    def _open_gallery(self, filters: GalleryFilter) -> None:
        # The app's gallery may be built on first use (opening SQLite, a sync):
        # never on the UI thread.
        try:
            gallery = self._given_gallery
            if gallery is None:
                gallery = self.app.gallery  # type: ignore[attr-defined]
            pages = EntryPages(gallery, filters)
        except Exception as exc:
            self.post_message(GalleryOpenFailed(_error_text(exc)))
            return
        self.post_message(GalleryOpened(gallery, pages))

    def on_gallery_opened(self, message: GalleryOpened) -> None:
        self.gallery = message.gallery
        self.list.empty_text = self._empty_text()
        self.list.set_pages(message.pages)
        self._show_filters()

    def on_gallery_open_failed(self, message: GalleryOpenFailed) -> None:
        self.list.empty_text = f"cannot open the gallery: {message.error}"
        self.list.refresh()
        self._error(f"Gallery: {message.error}")

    def on_unmount(self) -> None:
        reload_history = getattr(self.app, "reload_history", None)
        if self.changed and callable(reload_history):
            reload_history()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Images may have been made, or changed in the large view, meanwhile.
        if self.gallery is not None:
            self.reload()

    # -- the list ----------------------------------------------------------------

    def reload(self, cursor: int | None = None) -> None:
        """Query again with the current filters; the cursor stays where it was."""
        if self.gallery is None:
            return
        try:
            pages = EntryPages(self.gallery, self.filters)
        except Exception as exc:
            self._error(f"Gallery: {_error_text(exc)}")
            return
        self.list.empty_text = self._empty_text()
        self.list.set_pages(pages, self.list.cursor if cursor is None else cursor)
        self._show_filters()

    def _empty_text(self) -> str:
        if self.filters.search or self.filters != GalleryFilter(sort=self.filters.sort):
            return "no images match"
        return "the gallery is empty: generate something with ctrl+g"

    def _show_filters(self) -> None:
        count = self.list.count
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{count:,} image{'s' * (count != 1)}", style="bold")
        if self.filters.search:
            text.append(" matching ")
            text.append(self.filters.search, style="italic")
        text.append(f"  ·  {self.filters.describe()}")
        self.query_one("#gallery-filters", Static).update(text)

    def on_gallery_list_highlighted(self, message: GalleryList.Highlighted) -> None:
        if message.gallery_list is not self.list:
            return  # the hidden view
        entry = message.entry
        info = self.query_one("#gallery-info", Static)
        if entry is None:
            info.update("", layout=False)
            self.query_one("#gallery-thumb", ImageWidget).image = None
            return
        info.update(settings_text_short(entry), layout=False)
        if self._thumb_timer is not None:
            self._thumb_timer.stop()
        self._thumb_timer = self.set_timer(THUMB_DELAY, lambda: self._make_thumbnail(entry.id))

    @work(thread=True, exit_on_error=False, group="gallery-thumb", exclusive=True)
    def _make_thumbnail(self, entry_id: int) -> None:
        from PIL import Image

        try:
            path = self.gallery.thumbnail(entry_id, THUMB_SIZE)  # type: ignore[union-attr]
            # Decoded here, not at each redraw on the UI thread.
            with Image.open(path) as im:
                im.load()
                image = im.copy()
        except Exception as exc:
            self.post_message(ThumbnailReady(entry_id, None, _error_text(exc)))
            return
        self.post_message(ThumbnailReady(entry_id, image))

    def on_thumbnail_ready(self, message: ThumbnailReady) -> None:
        entry = self.list.entry
        if entry is None or entry.id != message.entry_id:
            return  # the cursor moved on
        self.query_one("#gallery-thumb", ImageWidget).image = message.image
        if message.error:
            info = self.query_one("#gallery-info", Static)
            text = settings_text_short(entry)
            text.append(f"\nno preview: {message.error}", style="dim")
            info.update(text, layout=False)

    # -- search and filters --------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "gallery-search":
            return
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY, self._apply_search)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "gallery-search":
            self._apply_search()
            self.list.focus()

    def _apply_search(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        text = self.search_input.value.strip()
        if text != self.filters.search:
            self._set_filters(self.filters.with_changes(search=text))

    def _set_filters(self, filters: GalleryFilter) -> None:
        self.filters = filters
        self.reload(cursor=0)

    def action_search(self) -> None:
        self.set_focus(self.search_input)  # at once: `focus()` waits a turn

    def action_focus_list(self) -> None:
        if self.focused is self.search_input:
            self._apply_search()
            self.list.focus()

    def action_toggle_grid(self) -> None:
        old = self.list
        self.grid_mode = not self.grid_mode
        new = self.list
        new.empty_text = old.empty_text
        new.marked_id = old.marked_id
        old.display = False
        new.display = True
        if old.pages is not None:
            new.set_pages(old.pages, old.cursor)
        new.focus()

    def action_favorites_only(self) -> None:
        self._set_filters(self.filters.with_changes(favorites=not self.filters.favorites))

    def action_pick_model(self) -> None:
        if self.gallery is None:
            return
        try:
            models = list(self.gallery.models())
        except Exception as exc:
            self._error(f"Gallery: {_error_text(exc)}")
            return

        def picked(model: str | None) -> None:
            if model != self.filters.model:
                self._set_filters(self.filters.with_changes(model=model))

        self.app.push_screen(ModelPicker(models, self.filters.model), picked)

    def action_cycle_period(self) -> None:
        period = (self.filters.period + 1) % len(PERIODS)
        self._set_filters(self.filters.with_changes(period=period))

    def action_toggle_sort(self) -> None:
        sort = "oldest" if self.filters.sort == "newest" else "newest"
        self._set_filters(self.filters.with_changes(sort=sort))

    # -- actions on the highlighted image --------------------------------------------

    def _current(self) -> Any | None:
        entry = self.list.entry
        if entry is None:
            self.notify("No image here.", severity="warning", markup=False)
        return entry

    def action_open(self) -> None:
        entry = self._current()
        if entry is not None:
            self.app.push_screen(GalleryDetailScreen(entry, self))

    def step(self, delta: int) -> Any | None:
        """Move the cursor by `delta` (for the large view); returns the entry there."""
        self.list.move_to(self.list.cursor + delta)
        return self.list.entry

    def toggle_favorite(self, entry: Any) -> Any | None:
        """Flip the favourite mark in the index; returns the updated entry."""
        try:
            updated = self.gallery.set_favorite(entry.id, not entry.favorite)  # type: ignore[union-attr]
        except Exception as exc:
            self._error(f"Favourite not changed: {_error_text(exc)}")
            return None
        self.changed = True
        self.reload()
        word = "Marked as favourite" if updated.favorite else "No longer a favourite"
        self.notify(f"{word}: {entry.shown_name}", markup=False)
        return updated

    def action_favorite(self) -> None:
        entry = self._current()
        if entry is not None:
            self.toggle_favorite(entry)

    def copy_settings(self, entry: Any) -> str:
        """Copy the A1111 parameters text (OSC 52 reaches the clipboard over SSH too)."""
        text = parameters_text(entry)
        self.app.copy_to_clipboard(text)
        # OSC 52 has no reply: whether the terminal (or tmux) took it cannot be known.
        self.notify(
            "Settings sent to the clipboard (OSC 52); terminals that do not support it "
            "drop it silently.",
            markup=False,
        )
        return text

    def action_copy(self) -> None:
        entry = self._current()
        if entry is not None:
            self.copy_settings(entry)

    def remix(self, entry: Any) -> None:
        """Close the gallery and load every setting of `entry` into the prompt editor."""
        if entry.request is None:
            self._error("This image carries no settings that can make it again.")
            return
        remix = getattr(self.app, "remix_request", None)
        if remix is None:
            self._error("Remix needs the prompt editor; open the gallery from the app.")
            return
        request = entry.request.replace(count=1)
        if entry.remix_seed is not None:
            request = request.replace(seed=entry.remix_seed)
        while self.app.screen is not self:
            self.app.pop_screen()
        self.dismiss()
        self.app.call_later(remix, request)

    def action_remix(self) -> None:
        entry = self._current()
        if entry is not None:
            self.remix(entry)

    def img2img(self, entry: Any) -> None:
        """Close the gallery and start img2img from `entry` in the prompt editor."""
        start = getattr(self.app, "img2img_from", None)
        if start is None:
            self._error("img2img needs the prompt editor; open the gallery from the app.")
            return
        while self.app.screen is not self:
            self.app.pop_screen()
        self.dismiss()
        self.app.call_later(start, entry)

    def action_img2img(self) -> None:
        entry = self._current()
        if entry is not None:
            self.img2img(entry)

    def upscale(self, entry: Any) -> None:
        from sdtui.tui.gallery_upscale import start_upscale

        start_upscale(self, entry)

    def action_upscale(self) -> None:
        entry = self._current()
        if entry is not None:
            self.upscale(entry)

    def action_delete(self) -> None:
        entry = self._current()
        if entry is None:
            return
        try:
            token = self.gallery.delete(entry.id)  # type: ignore[union-attr]
        except Exception as exc:
            self._error(f"Not deleted: {_error_text(exc)}")
            self.reload()
            return
        self.changed = True
        self.undo_tokens.append((token, entry.shown_name))
        if self.list.marked_id == entry.id:
            self.list.marked_id = None
        self.reload()
        self.notify(f"Moved to the trash: {entry.shown_name}  (u puts it back)", markup=False)

    def action_undo(self) -> None:
        if not self.undo_tokens:
            self.notify("Nothing to undo.", markup=False)
            return
        token, name = self.undo_tokens[-1]
        try:
            restored = self.gallery.undo_delete(token)  # type: ignore[union-attr]
        except Exception as exc:
            self._error(f"Could not put {name} back: {_error_text(exc)}")
            return
        self.undo_tokens.pop()
        self.changed = True
        self.reload()
        self.notify(f"Restored: {restored.shown_name}", markup=False)

    def action_mark(self) -> None:
        entry = self._current()
        if entry is None:
            return
        self.list.marked_id = None if self.list.marked_id == entry.id else entry.id
        self.list.refresh()
        if self.list.marked_id is not None:
            self.notify("Marked. Highlight another image and press = to compare.", markup=False)

    def action_compare(self) -> None:
        entry = self._current()
        if entry is None:
            return
        marked_id = self.list.marked_id
        if marked_id is None or marked_id == entry.id:
            self.notify(
                "Mark one image with space, then highlight another and press =.",
                severity="warning",
                markup=False,
            )
            return
        marked = self.gallery.get(marked_id)  # type: ignore[union-attr]
        if marked is None:
            self.list.marked_id = None
            self._error("The marked image is no longer in the gallery.")
            return
        self.app.push_screen(GalleryCompareScreen(marked, entry))

    def action_back(self) -> None:
        if self.focused is self.search_input:
            self._apply_search()
            self.list.focus()
            return
        self.dismiss()

    def action_help(self) -> None:
        self.app.push_screen(GalleryHelpScreen())

    # -- messages ----------------------------------------------------------------

    def _error(self, message: str) -> None:
        show = getattr(self.app, "show_error", None)
        if callable(show):
            show(message)
        else:
            self.notify(message, title="Error", severity="error", markup=False, timeout=8)
