"""A virtual list of gallery entries: one line each, drawn line by line on demand.

The list never holds its rows: `render_line` asks `EntryPages` for the entry at
each visible position, so only pages in view are ever fetched from the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from sdtui.display import one_line
from sdtui.tui.gallery_pages import EntryPages

FAVOURITE_MARK = "★"
COMPARE_MARK = "◆"


def row_text(entry: Any, marked: bool = False, width: int = 120) -> Text:
    """One list line: marks, date, size, model, then the prompt (literal).

    Narrow lists drop the size and model, then the date, so the prompt stays readable.
    """
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(FAVOURITE_MARK if entry.favorite else " ", style="bold yellow")
    text.append(COMPARE_MARK if marked else " ", style="bold magenta")
    if width >= 50:
        text.append(f" {entry.created:%Y-%m-%d %H:%M} ", style="dim")
    if width >= 80:
        size = f"{entry.width}x{entry.height}" if entry.width and entry.height else ""
        text.append(f"{size:>9} ", style="dim")
        model = entry.model or ""
        model = model if len(model) <= 12 else model[:11] + "…"
        text.append(f"{model:<12} ", style="cyan")
    else:
        text.append(" ")
    prompt = one_line(entry.prompt or "")  # escape sequences shown as U+FFFD, never obeyed
    text.append(prompt or entry.shown_path)
    return text


class GalleryList(ScrollView, can_focus=True):
    """Every entry of the current filter, scrolled with the keys or the mouse."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"gallery-list--cursor", "gallery-list--empty"}
    DEFAULT_CSS = """
    GalleryList {
        overflow-x: hidden;
        overflow-y: scroll;
    }
    GalleryList > .gallery-list--cursor {
        background: $block-cursor-blurred-background;
    }
    GalleryList:focus > .gallery-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    GalleryList > .gallery-list--empty {
        color: $text-muted;
    }
    """

    cursor: reactive[int] = reactive(0, always_update=False)

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another entry (or the list was refilled)."""

        gallery_list: GalleryList
        index: int
        entry: Any | None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pages: EntryPages | None = None
        self.marked_id: int | None = None  # the entry picked for comparing
        self.empty_text = "loading the gallery…"

    # -- content -------------------------------------------------------------

    def set_pages(self, pages: EntryPages, cursor: int = 0) -> None:
        """Show another result set; the cursor stays at `cursor` where it can."""
        self.pages = pages
        self._update_virtual_size()
        self.set_reactive(GalleryList.cursor, 0)
        self._move(max(0, min(cursor, pages.count - 1)), force=True)
        self.refresh()

    @property
    def count(self) -> int:
        return self.pages.count if self.pages is not None else 0

    @property
    def entry(self) -> Any | None:
        """The entry under the cursor."""
        return self.pages.entry(self.cursor) if self.pages is not None else None

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.size.width, self.count)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()

    # -- drawing -------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = self.scroll_offset.y + y
        if self.pages is None or self.count == 0:
            if y == 0:
                style = base + self.get_component_rich_style("gallery-list--empty")
                return Strip([Segment(self.empty_text[:width], style)]).adjust_cell_length(
                    width, base
                )
            return Strip.blank(width, base)
        entry = self.pages.entry(index)
        if entry is None:
            if self.pages.error and index < self.count:
                style = base + self.get_component_rich_style("gallery-list--empty")
                message = f"cannot read the gallery: {self.pages.error}"
                return Strip([Segment(message[:width], style)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        text = row_text(entry, marked=entry.id == self.marked_id, width=width)
        style = base
        if index == self.cursor:
            style = base + self.get_component_rich_style("gallery-list--cursor")
        text.truncate(width, overflow="ellipsis")
        segments = [
            Segment(seg.text, style + seg.style if seg.style else style)
            for seg in text.render(self.app.console)
            if seg.text != "\n"
        ]
        return Strip(segments).adjust_cell_length(width, style or Style())

    # -- the cursor ----------------------------------------------------------

    def _move(self, index: int, force: bool = False) -> None:
        if self.count == 0:
            self.post_message(self.Highlighted(self, 0, None))
            return
        index = max(0, min(index, self.count - 1))
        if index == self.cursor and not force:
            return
        old = self.cursor
        self.set_reactive(GalleryList.cursor, index)
        self._scroll_to_cursor()
        self._refresh_cursor(old, index)
        self.post_message(self.Highlighted(self, index, self.entry))

    def _refresh_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)

    def _page_step(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif height and self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def move_to(self, index: int) -> None:
        self._move(index)

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_page_up(self) -> None:
        self._move(self.cursor - self._page_step())

    def action_page_down(self) -> None:
        self._move(self.cursor + self._page_step())

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(self.count - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            self._move(self.scroll_offset.y + offset.y)
