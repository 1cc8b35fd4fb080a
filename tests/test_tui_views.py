"""What the screen shows is what is true: the large view keeps the picture's shape,
an applied style is marked and can be turned off, a fixed error goes away, a deleted
image leaves the history, and a copy says it cannot be confirmed."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
import test_tui_queue
from helpers import gallery_pngs, idle, wait_until
from test_tui_app import type_prompt

from sdtui.tui.gallery_detail import GalleryDetailScreen, fit_cells
from sdtui.tui.gallery_screen import GalleryScreen

SIZE = (120, 40)

engines = test_tui_queue.engines  # the fixtures, shared
make_app = test_tui_queue.make_app


async def make_images(pilot: Any, app: Any, *sizes: tuple[int, int]) -> None:
    app.params.set_value("steps", "1")
    for n, (width, height) in enumerate(sizes):
        app.params.set_value("width", width)
        app.params.set_value("height", height)
        await type_prompt(pilot, app, f"image {n}")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda n=n: len(app.history.entries) == n + 1)
    await idle(pilot, app)


async def open_gallery(pilot: Any, app: Any) -> GalleryScreen:
    await pilot.press("ctrl+o")
    await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen))
    screen = app.screen
    await wait_until(pilot, lambda: screen.pages is not None and screen.list.count)
    screen.list.focus()
    await pilot.pause()
    return screen


@pytest.mark.parametrize(
    ("image", "box", "expected"),
    [
        ((64, 96), (80, 30), (40, 30)),  # portrait: limited by height
        ((64, 64), (80, 30), (60, 30)),  # square: twice as many columns as rows
        ((96, 64), (40, 30), (40, 13)),  # landscape: limited by width
    ],
)
def test_fit_keeps_the_shape_in_cells_twice_as_tall_as_wide(
    image: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert fit_cells(image, box) == expected


async def test_the_large_view_keeps_a_portrait_portrait(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await make_images(pilot, app, (64, 96))
        await open_gallery(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, GalleryDetailScreen))
        widget = app.screen.query_one("#detail-image")
        await wait_until(pilot, lambda: widget.region.width > 1)
        await pilot.pause()
        shape = widget.region.width / (widget.region.height * 2)
        assert abs(shape - 64 / 96) < 0.1


async def test_an_applied_style_is_marked_and_alt_o_turns_styles_off(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        assert app.prompt_editor.border_title in (None, "")
        app.active_styles = ["cinematic"]  # what the styles picker sets
        await pilot.pause()
        assert "styles on: cinematic" in str(app.prompt_editor.border_title)
        await pilot.press("alt+o")
        assert app.active_styles == [] and not app.prompt_editor.border_title


async def test_a_deleted_image_leaves_the_history(make_app: Any, gallery_dir: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await make_images(pilot, app, (64, 64), (64, 64))
        newest = app.history.entries[0]
        screen = await open_gallery(pilot, app)
        await pilot.press("d")  # the newest, highlighted first
        await wait_until(pilot, lambda: screen.list.count == 1)
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        assert newest.id not in [e.id for e in app.history.entries]
        # Deleted by hand meanwhile: remix refuses it and the history lets it go.
        last = app.history.entries[0]
        last.path.unlink()
        await pilot.press("f2", "f5")
        assert "no longer in the gallery" in app.last_error
        assert app.history.entries == [] and gallery_pngs(gallery_dir) == []


async def test_copy_says_the_clipboard_cannot_confirm(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await make_images(pilot, app, (64, 64))
        await open_gallery(pilot, app)
        await pilot.press("c")
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any("OSC 52" in n and "drop it silently" in n for n in notes)
        assert not any("copied to the clipboard" in n for n in notes)


async def test_a_save_error_goes_once_the_retry_saved_everything(
    make_app: Any, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync
    full = {"on": False}

    def fsync(fd: int) -> None:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        full["on"] = True
        app.params.set_value("steps", "1")
        await type_prompt(pilot, app, "disk full")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: "No space left" in app.last_error)
        await idle(pilot, app)
        error_line = app.status.query_one("#error-line")
        assert "No space left" in str(error_line.render())
        full["on"] = False
        await pilot.press("alt+s")
        await wait_until(pilot, lambda: len(gallery_pngs(gallery_dir)) == 1)
        await pilot.pause()
        assert app.last_error == "" and str(error_line.render()).strip() == ""
