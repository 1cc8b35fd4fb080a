"""History rows carry a small half-block thumbnail of their image, read only for rows in view."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PIL import Image
from rich.segment import Segment
from test_tui_app import (  # noqa: F401
    SIZE,
    engines,
    idle,
    make_app,
    set_field,
    type_prompt,
    wait_until,
)
from textual.app import App, ComposeResult

from sdtui.tui import history as history_module
from sdtui.tui.history import THUMB_COLUMNS, HistoryList


def _cells(history: HistoryList, y: int) -> list[Segment]:
    """The cells of one history line as drawn, one segment per cell."""
    cells: list[Segment] = []
    for segment in history.render_line(y):
        cells.extend(Segment(ch, segment.style) for ch in segment.text)
    return cells


def _rgb(color: Any) -> tuple[int, int, int]:
    triplet = color.get_truecolor()
    return (triplet.red, triplet.green, triplet.blue)


async def test_newest_row_shows_the_image_in_half_blocks_beside_its_text(
    make_app: Any,  # noqa: F811
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, app, "a [red]harbour[/red] at dusk")
        await set_field(pilot, app, "steps", "2")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
        history = app.history
        assert history.thumbnails
        entry = history.entries[0]
        await wait_until(pilot, lambda: history._thumbs.get(entry.id) is not None)
        await pilot.pause()

        lines = [_cells(history, 0), _cells(history, 1)]
        text = ["".join(c.text for c in line) for line in lines]
        # The text is still there, literally, beside the picture.
        assert "a [red]harbour[/red] at dusk" in text[0]
        assert f"seed {entry.seed}" in text[1]

        # The 64x64 image fits 4x4 pixels, centred in a 6-cell-wide, 2-line box.
        with Image.open(entry.path) as im:
            small = im.convert("RGB").resize((4, 4))
        start = next(i for i, c in enumerate(lines[0]) if c.text == "▀")
        drawn = []
        for line_no, line in enumerate(lines):
            cells = line[start : start + 4]
            assert [c.text for c in cells] == ["▀"] * 4
            for x, cell in enumerate(cells):
                for y, color in (
                    (line_no * 2, cell.style.color),
                    (line_no * 2 + 1, cell.style.bgcolor),
                ):
                    got, want = _rgb(color), small.getpixel((x, y))
                    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 8
                    drawn.append(got)
        assert len(set(drawn)) > 1  # a picture, not a flat block
        # Keys behave as before: enter remixes the highlighted row.
        history.focus()
        await pilot.press("enter")
        assert app.prompt_editor.text == "a [red]harbour[/red] at dusk"


async def test_narrow_history_lists_text_alone(make_app: Any) -> None:  # noqa: F811
    app = make_app()
    async with app.run_test(size=(60, 30)) as pilot:
        await pilot.pause()
        assert app.history.scrollable_content_region.width < history_module.MIN_THUMB_WIDTH
        assert not app.history.thumbnails
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        assert app.history.thumbnails


class RecordingGallery:
    """Hands out one real thumbnail file and remembers which entries were asked for."""

    def __init__(self, png: Path) -> None:
        self.png = png
        self.read: list[int] = []

    def thumbnail(self, entry_id: int, size: int = 256) -> Path:
        self.read.append(entry_id)
        return self.png


class HistoryApp(App[None]):
    def compose(self) -> ComposeResult:
        yield HistoryList()


async def test_only_rows_in_view_have_their_thumbnails_read(tmp_path: Path) -> None:
    png = tmp_path / "thumb.png"
    Image.new("RGB", (64, 64), (200, 40, 40)).save(png)
    gallery = RecordingGallery(png)
    entries = [
        SimpleNamespace(
            id=i, path=tmp_path / f"{i}.png", seed=i, request=None, prompt=f"prompt {i}"
        )
        for i in range(500, 0, -1)
    ]
    app = HistoryApp()
    async with app.run_test(size=(80, 24)) as pilot:
        history = app.query_one(HistoryList)
        history.gallery = gallery
        history.set_entries(entries)
        history.focus()
        await pilot.pause()
        assert history.thumbnails
        rows_in_view = history.scrollable_content_region.height // 2
        top = set(range(500, 500 - rows_in_view, -1))
        await wait_until(pilot, lambda: top <= set(history._thumbs))
        await pilot.pause()
        # The rows on screen and a few below; nothing further down.
        allowed = set(range(500, 500 - rows_in_view - history_module.NEAR_ROWS, -1))
        assert top <= set(gallery.read) <= allowed
        assert len(gallery.read) == len(set(gallery.read))  # each read once
        cells = _cells(history, 0)
        assert "prompt 500" in "".join(c.text for c in cells)
        blocks = [c for c in cells[: THUMB_COLUMNS + 2] if c.text == "▀"]
        assert len(blocks) == 4  # a square picture in 4 of the 6 cells
        assert {(_rgb(c.style.color), _rgb(c.style.bgcolor)) for c in blocks} == {
            ((200, 40, 40), (200, 40, 40))
        }

        # Jumping to the end reads the rows shown there, not the ones skipped over.
        await pilot.press("end")
        bottom = set(range(1, rows_in_view + 1))
        await wait_until(pilot, lambda: bottom <= set(history._thumbs))
        skipped = set(range(rows_in_view + history_module.NEAR_ROWS + 1, 500 - rows_in_view - 4))
        assert not skipped & set(gallery.read)
        assert history.highlighted == 499
