"""Large views: one image with all its settings, and two images compared side by side.

Images are decoded on a worker thread, so a large PNG never stalls the keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from sdtui.regular_files import open_regular
from sdtui.tui.gallery_keys import DETAIL_KEYS, bindings
from sdtui.tui.gallery_settings import DIFF_STYLE, compare_rows, settings_text, word_diff
from sdtui.tui.preview import RENDERERS

MAX_SIDE = 2048  # decoded size cap: a terminal shows far fewer pixels
CELL_ASPECT = 2.0  # a terminal cell is about twice as tall as it is wide


def fit_cells(image_size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest (columns, rows) inside `box` that keep the image's shape on screen."""
    width, height = image_size
    columns, rows = box
    if width <= 0 or height <= 0 or columns <= 0 or rows <= 0:
        return max(columns, 1), max(rows, 1)
    scale = min(columns / width, rows * CELL_ASPECT / height)
    return max(1, round(width * scale)), max(1, round(height * scale / CELL_ASPECT))


def image_widget(app: Any, widget_id: str) -> Any:
    renderer = getattr(app, "renderer", "auto")
    return RENDERERS.get(renderer, RENDERERS["auto"])(id=widget_id)


@dataclass
class ImageDecoded(Message):
    widget_id: str
    image: Any  # a PIL image, or None when the file could not be read
    error: str = ""


class ImageLoading:
    """Decode images off the UI thread and show them in the named image widgets."""

    @work(thread=True, exit_on_error=False, group="gallery-image")
    def load_image(self, widget_id: str, path: Path) -> None:
        from PIL import Image

        try:
            with open_regular(path) as fh, Image.open(fh) as im:
                im.draft("RGB", (MAX_SIDE, MAX_SIDE))
                im.thumbnail((MAX_SIDE, MAX_SIDE))
                image = im.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            self.post_message(ImageDecoded(widget_id, None, str(exc)))  # type: ignore[attr-defined]
            return
        self.post_message(ImageDecoded(widget_id, image))  # type: ignore[attr-defined]

    def on_image_decoded(self, message: ImageDecoded) -> None:
        try:
            widget = self.query_one(f"#{message.widget_id}")  # type: ignore[attr-defined]
        except Exception:
            return
        if message.image is not None:
            widget.image = message.image
        else:
            self.notify(  # type: ignore[attr-defined]
                f"cannot show the image: {message.error}", severity="warning", markup=False
            )


class GalleryDetailScreen(ImageLoading, Screen[None]):
    """One image large, with every setting beside it."""

    BINDINGS: ClassVar[list[BindingType]] = [*bindings(DETAIL_KEYS)]
    DEFAULT_CSS = """
    GalleryDetailScreen #detail-body { height: 1fr; }
    GalleryDetailScreen #detail-frame { width: 2fr; height: 1fr; align: center middle; }
    GalleryDetailScreen #detail-image { width: 1; height: 1; }
    GalleryDetailScreen #detail-side {
        width: 1fr; min-width: 40; border: round $panel-lighten-2; padding: 0 1;
    }
    """

    def __init__(self, entry: Any, owner: Any) -> None:
        super().__init__()
        self.entry = entry
        self.owner = owner  # the gallery screen: it does the actions

    def compose(self) -> ComposeResult:
        with Horizontal(id="detail-body"):
            with Vertical(id="detail-frame"):
                yield image_widget(self.app, "detail-image")
            with VerticalScroll(id="detail-side"):
                yield Static(settings_text(self.entry), id="detail-settings")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = self.entry.shown_name
        self.load_image("detail-image", self.entry.path)

    def on_image_decoded(self, message: ImageDecoded) -> None:
        self._image_size = message.image.size if message.image is not None else None
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """Size the image widget to the picture's shape (a fixed box would stretch it)."""
        size = getattr(self, "_image_size", None)
        frame = self.query_one("#detail-frame")
        box = (frame.content_region.width, frame.content_region.height)
        if size is None or box[0] <= 0:
            return
        columns, rows = fit_cells(size, box)
        widget = self.query_one("#detail-image")
        widget.styles.width = columns
        widget.styles.height = rows

    def show_entry(self, entry: Any) -> None:
        self.entry = entry
        self.query_one("#detail-settings", Static).update(settings_text(entry))

    def _step(self, delta: int) -> None:
        entry = self.owner.step(delta)
        if entry is not None and entry.id != self.entry.id:
            self.show_entry(entry)
            self.title = entry.shown_name
            self.load_image("detail-image", entry.path)

    def action_previous(self) -> None:
        self._step(-1)

    def action_next(self) -> None:
        self._step(1)

    def action_favorite(self) -> None:
        entry = self.owner.toggle_favorite(self.entry)
        if entry is not None:
            self.show_entry(entry)

    def action_copy(self) -> None:
        self.owner.copy_settings(self.entry)

    def action_remix(self) -> None:
        self.owner.remix(self.entry)

    def action_img2img(self) -> None:
        self.owner.img2img(self.entry)

    def action_upscale(self) -> None:
        self.owner.upscale(self.entry)

    def action_back(self) -> None:
        self.dismiss()


def compare_table(left: Any, right: Any) -> Table:
    """The settings of two entries; rows that differ marked ≠ and highlighted."""
    table = Table(expand=True, show_edge=False, show_lines=False)
    table.add_column("", width=1, no_wrap=True)
    table.add_column("Setting", style="bold", no_wrap=True)
    table.add_column("Left (marked)", ratio=1)
    table.add_column("Right (highlighted)", ratio=1)
    for row in compare_rows(left, right):
        if row.label in ("Prompt", "Negative prompt") and row.differs:
            a, b = word_diff(row.left, row.right)
            table.add_row("≠", row.label, a, b)
        elif row.differs:
            table.add_row(
                "≠",
                Text(row.label, style=DIFF_STYLE),
                Text(row.left or "—", style=DIFF_STYLE),
                Text(row.right or "—", style=DIFF_STYLE),
            )
        else:
            table.add_row("", row.label, Text(row.left or "—"), Text(row.right or "—"))
    return table


class GalleryCompareScreen(ImageLoading, Screen[None]):
    """Two images side by side, and their settings with the differences highlighted."""

    BINDINGS = [Binding("escape,q", "back", "Back", show=True, id="back")]
    DEFAULT_CSS = """
    GalleryCompareScreen #compare-images { height: 1fr; }
    GalleryCompareScreen .compare-side {
        width: 1fr; border: round $panel-lighten-2; align: center middle;
    }
    GalleryCompareScreen .compare-side > Static { height: 1; color: $text-muted; }
    GalleryCompareScreen #compare-left, GalleryCompareScreen #compare-right {
        width: auto; height: 1fr;
    }
    GalleryCompareScreen #compare-table { height: auto; max-height: 50%; }
    """

    def __init__(self, left: Any, right: Any) -> None:
        super().__init__()
        self.left = left
        self.right = right

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-images"):
            for side, entry in (("left", self.left), ("right", self.right)):
                with Vertical(classes="compare-side"):
                    yield image_widget(self.app, f"compare-{side}")
                    yield Static(Text(entry.shown_name, no_wrap=True, overflow="ellipsis"))
        with VerticalScroll(id="compare-table"):
            yield Static(compare_table(self.left, self.right))
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Compare"
        self.load_image("compare-left", self.left.path)
        self.load_image("compare-right", self.right.path)

    @property
    def differing(self) -> list[str]:
        """The settings that differ (what the ≠ rows show)."""
        return [row.label for row in compare_rows(self.left, self.right) if row.differs]

    def action_back(self) -> None:
        self.dismiss()
