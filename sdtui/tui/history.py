"""The history list: past generations, newest first (prompt, seed, size, time).

Where the pane is wide enough each row is two lines with a small thumbnail in
half-block cells beside the text. The rows' left padding keeps a blank space of
the thumbnail's width and the pixels are drawn over it once loaded, so rows never
change size; pixels are read on a worker thread, only for rows in or near view.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from sdtui.display import one_line, path_text
from sdtui.regular_files import open_regular
from sdtui.tui.gallery_grid import THUMB_SOURCE, Lines, half_block_lines

THUMB_COLUMNS = 6  # cells per thumbnail line
THUMB_LINES = 2  # lines per thumbnail: four pixel rows
THUMB_PIXELS = (THUMB_COLUMNS, THUMB_LINES * 2)
THUMB_GAP = 1  # blank cells between the thumbnail and the text
MIN_THUMB_WIDTH = 40  # narrower panes list text alone: the prompt needs the room
NEAR_ROWS = 4  # rows just out of view loaded too, so scrolling finds them ready
KEEP_THUMBS = 200  # rows' pixels kept; several screens' worth


@dataclass
class HistoryThumbsLoaded(Message):
    """Pixels for some rows, by entry id (None: no picture to show)."""

    lines: dict[int, Lines | None]


def _created(entry: Any) -> str:
    created = getattr(entry, "created", None)
    if isinstance(created, (int, float)):
        created = dt.datetime.fromtimestamp(created)
    if isinstance(created, str):
        text = created
        try:
            created = dt.datetime.fromisoformat(text)
        except ValueError:
            return text[:16]
    if isinstance(created, dt.datetime):
        if created.tzinfo is not None:
            created = created.astimezone()
        today = dt.datetime.now(created.tzinfo).date()
        return created.strftime("%H:%M" if created.date() == today else "%Y-%m-%d %H:%M")
    return ""


def entry_label(entry: Any, thumbnail: bool = False) -> Text:
    """One history row. Built from Text so prompts are shown literally, never as markup.

    With `thumbnail` the row is two lines, the prompt on the first and the details
    on the second; the list's left padding leaves room for the picture.
    """
    request = entry.request
    prompt = getattr(entry, "prompt", "") or (request.prompt if request else "")
    label = Text(no_wrap=True, overflow="ellipsis")
    # Imported images may carry escape sequences: shown as U+FFFD, never sent to the terminal.
    label.append(one_line(prompt)[:200] or path_text(entry.path))
    details = f"\nseed {entry.seed}" if thumbnail else f"  seed {entry.seed}"
    width = getattr(entry, "width", None) or (request.width if request else None)
    height = getattr(entry, "height", None) or (request.height if request else None)
    if width and height:
        details += f" · {width}x{height}"
    when = _created(entry)
    if when:
        details += f" · {when}"
    label.append(details, style="dim")
    return label


class HistoryList(OptionList):
    """Gallery entries newest first; Enter/r remix, v variations."""

    DEFAULT_CSS = f"""
    HistoryList.-thumbnails > .option-list--option {{
        padding: 0 1 0 {1 + THUMB_COLUMNS + THUMB_GAP};
    }}
    """

    BINDINGS = [
        Binding("enter,r", "app.remix", "Remix", show=True),
        Binding("v", "app.variations", "Variations", show=True),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entries: list[Any] = []
        # Thumbnails come from this gallery's cache; without one, from the PNG itself.
        self.gallery: Any = None
        self.thumbnails = False  # rows drawn with thumbnails (the pane is wide enough)
        self._thumbs: OrderedDict[int, Lines | None] = OrderedDict()
        self._wanted: dict[int, Any] = {}  # entry id -> entry, newest wish last
        self._asked: set[int] = set()  # wanted or being read now: not asked for again
        self._lock = threading.Lock()
        self._loading = False
        self._padding = -1  # left padding the rows were last drawn with

    def set_entries(self, entries: list[Any], highlight: int | None = 0) -> None:
        self.entries = list(entries)
        self.clear_options()
        self.add_options(
            Option(entry_label(e, self.thumbnails), id=str(e.id)) for e in self.entries
        )
        if self.entries and highlight is not None:
            self.highlighted = min(highlight, len(self.entries) - 1)

    def add_newest(self, entries: list[Any]) -> None:
        """Put freshly saved entries on top and highlight the newest."""
        self.set_entries(list(reversed(entries)) + self.entries)

    # -- thumbnails ------------------------------------------------------------

    def notify_style_update(self) -> None:
        try:
            padding = self.get_component_styles("option-list--option").padding.left
        except KeyError:  # the component styles are not made yet
            padding = self._padding
        if padding != self._padding:
            # The room for thumbnails came or went: rows are drawn again with it.
            self._padding = padding
            self._clear_caches()
        super().notify_style_update()

    def on_resize(self, event: events.Resize) -> None:
        wide = self.scrollable_content_region.width >= MIN_THUMB_WIDTH
        if wide != self.thumbnails:
            self.thumbnails = wide
            self.set_class(wide, "-thumbnails")
            # The rows change height: rebuild them, keeping the highlighted one.
            self.set_entries(self.entries, self.highlighted)
            if self.highlighted is not None:
                self.scroll_to_highlight()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if not self.thumbnails:
            return strip
        try:
            index, line = self._lines[self.scroll_offset.y + y]
        except IndexError:
            return strip
        if line >= THUMB_LINES or index >= len(self.entries):
            return strip
        entry_id = self.entries[index].id
        if entry_id not in self._thumbs:
            self._want_rows_in_view()
        lines = self._thumbs.get(entry_id)
        if not lines:  # not loaded yet, or no picture: the blank space stays
            return strip
        if self.get_component_styles("option-list--option").padding.left <= THUMB_COLUMNS:
            return strip  # the wider padding is not applied yet
        left = self._get_left_gutter_width() + 1
        # Cells the picture leaves blank take the row's own background.
        base = Style.chain(*(s.style for s in strip.crop(left, left + 1) if s.style))
        picture = Strip([Segment(s.text, base + s.style if s.style else base) for s in lines[line]])
        return Strip.join([strip.crop(0, left), picture, strip.crop(left + THUMB_COLUMNS)])

    def _want_rows_in_view(self) -> None:
        """Ask for the pixels of the rows on screen and a few either side."""
        lines = self._lines
        if not lines:
            return
        top = self.scroll_offset.y
        bottom = min(len(lines) - 1, top + self.scrollable_content_region.height - 1)
        if top > bottom:
            return
        top_row, bottom_row = lines[top][0], lines[bottom][0]
        first = max(0, top_row - NEAR_ROWS)
        last = min(len(self.entries) - 1, bottom_row + NEAR_ROWS)
        # Wished last is loaded first: the rows in view, top one last of all.
        near = [*range(first, top_row), *range(bottom_row + 1, last + 1)]
        order = [*near, *range(bottom_row, top_row - 1, -1)]
        missing = [
            self.entries[i]
            for i in order
            if self.entries[i].id not in self._thumbs and self.entries[i].id not in self._asked
        ]
        if not missing:
            return
        with self._lock:
            for entry in missing:
                self._asked.add(entry.id)
                self._wanted[entry.id] = entry
            while len(self._wanted) > KEEP_THUMBS:
                self._asked.discard(self._wanted.pop(next(iter(self._wanted))).id)
            start = not self._loading
            self._loading = True
        if start:
            self.call_later(self._load_thumbs, self.gallery)

    @work(thread=True, exit_on_error=False, group="history-thumbs")
    def _load_thumbs(self, gallery: Any) -> None:
        from PIL import Image

        while True:
            with self._lock:
                if not self._wanted:
                    self._loading = False
                    return
                batch = list(self._wanted.values())[-8:]
                for entry in batch:
                    del self._wanted[entry.id]
            loaded: dict[int, Lines | None] = {}
            for entry in batch:
                try:
                    source = (
                        entry.path if gallery is None else gallery.thumbnail(entry.id, THUMB_SOURCE)
                    )
                    with open_regular(source) as fh, Image.open(fh) as im:
                        loaded[entry.id] = half_block_lines(im, THUMB_PIXELS)
                except Exception:  # a missing or unreadable file: the row shows text alone
                    loaded[entry.id] = None
            self.post_message(HistoryThumbsLoaded(loaded))

    def on_history_thumbs_loaded(self, message: HistoryThumbsLoaded) -> None:
        message.stop()
        for entry_id, lines in message.lines.items():
            self._asked.discard(entry_id)
            self._thumbs[entry_id] = lines
            self._thumbs.move_to_end(entry_id)
        while len(self._thumbs) > KEEP_THUMBS:
            self._thumbs.popitem(last=False)
        self.refresh()

    @property
    def selected_entry(self) -> Any | None:
        index = self.highlighted
        if index is None or not 0 <= index < len(self.entries):
            return None
        return self.entries[index]
