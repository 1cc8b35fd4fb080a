"""The gallery as a grid of thumbnails, drawn with half-block cells line by line.

Half blocks (`▀`, foreground the upper pixel, background the lower) show in
every colour terminal and over any SSH link, and fit the line-by-line drawing
that keeps the grid virtual. Thumbnails come from the gallery's cache on a
worker thread, only for cells in view, and a bounded number are kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from sdtui.display import one_line
from sdtui.tui.gallery_list import COMPARE_MARK, FAVOURITE_MARK, GalleryList

CELL_WIDTH = 20  # columns per cell, a gap of 2 included
IMAGE_LINES = 8  # lines of picture per cell: 16 pixel rows
CELL_HEIGHT = IMAGE_LINES + 2  # picture, caption, gap
PIXELS = (CELL_WIDTH - 2, IMAGE_LINES * 2)
THUMB_SOURCE = 64  # the cached thumbnail read to make the cell's pixels
KEEP_THUMBS = 400  # cells' pixels kept; far more than a screen shows
MAX_WANTED = 64  # cells scrolled past long ago are not worth loading

Lines = list[list[Segment]]  # IMAGE_LINES lines of segments, one per cell column


@dataclass
class ThumbsLoaded(Message):
    """Pixels for some cells, by entry id (None: no picture to show)."""

    lines: dict[int, Lines | None]


def half_block_lines(image: Any, pixels: tuple[int, int] = PIXELS) -> Lines:
    """An RGB image scaled to fit `pixels` (a cell's by default), as lines of half
    blocks, centred: two pixel rows per line."""
    width, height = pixels
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image.convert("RGB").resize(size)
    left = (width - size[0]) // 2
    top = (height - size[1]) // 2
    rgb = small.load()
    blank = None
    lines: Lines = []
    for line in range(height // 2):
        segments: list[Segment] = []
        for x in range(width):
            colours = []
            for y in (line * 2, line * 2 + 1):
                sx, sy = x - left, y - top
                inside = 0 <= sx < size[0] and 0 <= sy < size[1]
                colours.append(Color.from_rgb(*rgb[sx, sy]) if inside else blank)
            upper, lower = colours
            if upper is None and lower is None:
                segments.append(Segment(" "))
            elif upper is None:
                segments.append(Segment("▄", Style(color=lower)))
            else:
                segments.append(Segment("▀", Style(color=upper, bgcolor=lower)))
        lines.append(segments)
    return lines


class GalleryGrid(GalleryList):
    """Every entry of the current filter as a cell: thumbnail, then marks and prompt."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "cursor_left", "Left", show=False),
        Binding("right", "cursor_right", "Right", show=False),
    ]
    DEFAULT_CSS = """
    GalleryGrid > .gallery-list--cursor {
        background: $block-cursor-blurred-background;
    }
    GalleryGrid:focus > .gallery-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._thumbs: OrderedDict[int, Lines | None] = OrderedDict()
        self._wanted: dict[int, None] = {}  # ids in view without pixels, newest wish last
        self._lock = threading.Lock()
        self._loading = False

    # -- geometry ------------------------------------------------------------

    @property
    def columns(self) -> int:
        return max(1, self.scrollable_content_region.width // CELL_WIDTH)

    def _update_virtual_size(self) -> None:
        rows = -(-self.count // self.columns)
        self.virtual_size = Size(self.size.width, rows * CELL_HEIGHT)

    def _page_step(self) -> int:
        rows = max(1, self.scrollable_content_region.height // CELL_HEIGHT)
        return rows * self.columns

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height
        top = (self.cursor // self.columns) * CELL_HEIGHT
        bottom = top + CELL_HEIGHT
        if top < self.scroll_offset.y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif height and bottom > self.scroll_offset.y + height:
            self.scroll_to(y=max(0, bottom - height), animate=False, immediate=True)

    def _refresh_cursor(self, old: int, new: int) -> None:
        self.refresh()

    def action_cursor_up(self) -> None:
        self._move(self.cursor - self.columns)

    def action_cursor_down(self) -> None:
        if self.cursor + self.columns < self.count:
            self._move(self.cursor + self.columns)
        else:
            self._move(self.count - 1)

    def action_cursor_left(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_right(self) -> None:
        self._move(self.cursor + 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        column = offset.x // CELL_WIDTH
        row = (self.scroll_offset.y + offset.y) // CELL_HEIGHT
        if column < self.columns:
            self._move(row * self.columns + column)

    # -- drawing -------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        if self.pages is None or self.count == 0:
            return super().render_line(y)
        width = self.scrollable_content_region.width
        base = self.rich_style
        row, line = divmod(self.scroll_offset.y + y, CELL_HEIGHT)
        segments: list[Segment] = []
        for column in range(self.columns):
            index = row * self.columns + column
            entry = self.pages.entry(index) if index < self.count else None
            cell: list[Segment]
            if entry is None:
                cell = [Segment(" " * CELL_WIDTH, base)]
            elif line < IMAGE_LINES:
                cell = [Segment(" ", base), *self._picture_line(entry.id, line, base)]
                cell.append(Segment(" ", base))
            elif line == IMAGE_LINES:
                cell = self._caption(entry, index, base)
            else:
                cell = [Segment(" " * CELL_WIDTH, base)]
            segments.extend(cell)
        return Strip(segments).adjust_cell_length(width, base)

    def _picture_line(self, entry_id: int, line: int, base: Style) -> list[Segment]:
        if entry_id not in self._thumbs:
            self._want(entry_id)
            text = "…" if line == IMAGE_LINES // 2 else ""
            return [Segment(text.center(PIXELS[0]), base + Style(dim=True))]
        lines = self._thumbs[entry_id]
        if lines is None:
            text = "no image" if line == IMAGE_LINES // 2 else ""
            return [Segment(text.center(PIXELS[0]), base + Style(dim=True))]
        return [Segment(s.text, base + s.style if s.style else base) for s in lines[line]]

    def _caption(self, entry: Any, index: int, base: Style) -> list[Segment]:
        style = base
        if index == self.cursor:
            style = base + self.get_component_rich_style("gallery-list--cursor")
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(FAVOURITE_MARK if entry.favorite else " ", style="bold yellow")
        text.append(COMPARE_MARK if entry.id == self.marked_id else " ", style="bold magenta")
        text.append(one_line(entry.prompt or entry.shown_path))  # escape sequences never obeyed
        text.truncate(CELL_WIDTH - 2, overflow="ellipsis", pad=True)
        caption = [
            Segment(seg.text, style + seg.style if seg.style else style)
            for seg in text.render(self.app.console)
            if seg.text != "\n"
        ]
        return [Segment(" ", base), *caption, Segment(" ", base)]

    # -- thumbnails ------------------------------------------------------------

    def _want(self, entry_id: int) -> None:
        with self._lock:
            self._wanted.pop(entry_id, None)
            self._wanted[entry_id] = None
            while len(self._wanted) > MAX_WANTED:
                del self._wanted[next(iter(self._wanted))]
            start = not self._loading
            self._loading = True
        if start and self.pages is not None:
            self.call_later(self._load_thumbs, self.pages.gallery)

    @work(thread=True, exit_on_error=False, group="gallery-grid-thumbs")
    def _load_thumbs(self, gallery: Any) -> None:
        from PIL import Image

        while True:
            with self._lock:
                if not self._wanted:
                    self._loading = False
                    return
                # The newest wishes are the cells in view now.
                batch = list(self._wanted)[-8:]
                for entry_id in batch:
                    del self._wanted[entry_id]
            loaded: dict[int, Lines | None] = {}
            for entry_id in batch:
                try:
                    with Image.open(gallery.thumbnail(entry_id, THUMB_SOURCE)) as im:
                        loaded[entry_id] = half_block_lines(im)
                except Exception:  # a missing or unreadable file: the cell says so
                    loaded[entry_id] = None
            self.post_message(ThumbsLoaded(loaded))

    def on_thumbs_loaded(self, message: ThumbsLoaded) -> None:
        message.stop()
        for entry_id, lines in message.lines.items():
            self._thumbs[entry_id] = lines
            self._thumbs.move_to_end(entry_id)
        while len(self._thumbs) > KEEP_THUMBS:
            self._thumbs.popitem(last=False)
        self.refresh()

    def forget_thumbnail(self, entry_id: int) -> None:
        """Draw an entry's picture again from its file (it was changed or restored)."""
        self._thumbs.pop(entry_id, None)
