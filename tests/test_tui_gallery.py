"""The gallery browser driven by keys, over a real gallery folder and index."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from rich.console import Console
from textual import events
from textual.app import App

from sdtui.config import load_settings
from sdtui.gallery import Gallery, GalleryError
from sdtui.gallery.index import GalleryIndex, IndexRow
from sdtui.params import GenerationRequest, format_parameters
from sdtui.results import GeneratedImage, GenerationResult
from sdtui.tui.app import SdtuiApp
from sdtui.tui.gallery_detail import GalleryCompareScreen, GalleryDetailScreen
from sdtui.tui.gallery_grid import IMAGE_LINES, GalleryGrid
from sdtui.tui.gallery_keys import GALLERY_KEYS, GalleryHelpScreen
from sdtui.tui.gallery_list import GalleryList
from sdtui.tui.gallery_pick import ModelPicker
from sdtui.tui.gallery_screen import GalleryScreen

SIZE = (140, 40)

REQUESTS = [
    GenerationRequest(
        prompt="a red [bold]lighthouse[/bold] at dusk",
        negative_prompt="blurry",
        model="demo",
        scheduler="Euler a",
        steps=3,
        cfg=5.5,
        width=64,
        height=96,
    ),
    GenerationRequest(prompt="a castle\non a hill", model="demo", steps=4, width=64, height=64),
    GenerationRequest(
        prompt="an old oak forest", model="demo", steps=5, cfg=8, width=64, height=64
    ),
    GenerationRequest(prompt="a quiet harbour", model="other", steps=6, width=64, height=64),
]
SEEDS = [1234, 42, 7, 99]


def save_image(gallery: Gallery, request: GenerationRequest, seed: int, colour: int) -> Any:
    image = Image.new("RGB", (request.width, request.height), (colour, 40, 200 - colour))
    generated = GeneratedImage(image, seed, 0, request)
    return gallery.save(generated, GenerationResult(request, [generated], "demo", "cpu", "fp32"))


@pytest.fixture
def gallery(gallery_dir: Path) -> Any:
    g = Gallery(gallery_dir)
    for n, (request, seed) in enumerate(zip(REQUESTS, SEEDS, strict=True)):
        save_image(g, request, seed, 40 * n)
        time.sleep(0.01)  # distinct creation times: the newest is the last saved
    yield g
    g.close()


class Host(App[None]):
    """A bare app that opens the gallery screen on a given gallery."""

    def __init__(self, gallery: Any) -> None:
        super().__init__()
        self.gallery_under_test = gallery

    def on_mount(self) -> None:
        self.push_screen(GalleryScreen(self.gallery_under_test))


async def wait_until(pilot: Any, condition: Any, rounds: int = 600) -> None:
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("the screen did not get there")


async def opened(pilot: Any) -> GalleryScreen:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen))
    screen = app.screen
    await wait_until(pilot, lambda: screen.pages is not None)
    await pilot.pause()
    return screen


def plain(static: Any, width: int = 140) -> str:
    """What a Static holding a rich table shows, as plain text."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(static.content)
    return console.export_text()


def line_text(widget: GalleryList, y: int) -> str:
    return widget.render_line(y).text


def index_agrees_with_files(gallery: Gallery) -> set[str]:
    indexed = {e.rel_path for e in gallery.list(limit=1000)}
    root = gallery.root
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*.png")
        if not {".sdtui", ".trash"} & set(p.relative_to(root).parts)
    }
    assert indexed == on_disk
    return indexed


async def test_lists_newest_first_with_prompts_shown_literally(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        assert screen.list.count == 4
        assert "a quiet harbour" in line_text(screen.list, 0)
        assert "[bold]lighthouse[/bold]" in line_text(screen.list, 3)
        # The side pane shows the highlighted entry's settings.
        info = str(screen.query_one("#gallery-info").render())
        assert "a quiet harbour" in info and "seed 99" in info
        # Its thumbnail, from the gallery's cache, made once.
        thumb = screen.query_one("#gallery-thumb")
        await wait_until(pilot, lambda: thumb.image is not None)
        assert thumb.image.getpixel((0, 0)) == (120, 40, 80)
        await pilot.press("down", "up")
        await pilot.app.workers.wait_for_complete()
        await wait_until(pilot, lambda: thumb.image.getpixel((0, 0)) == (120, 40, 80))
        assert len(list(gallery.thumbs_dir.glob("*.png"))) <= 2


async def test_search_narrows_the_list_as_you_type(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("slash")
        assert screen.focused is screen.search_input
        await pilot.press(*"cast")
        await wait_until(pilot, lambda: screen.list.count == 1)
        assert "a castle on a hill" in line_text(screen.list, 0)
        assert screen.list.entry.seed == 42
        # Escape leaves the search field; the filter stays.
        await pilot.press("escape")
        assert screen.focused is screen.list
        assert screen.list.count == 1
        await pilot.press("slash", "ctrl+u", "z", "e", "b", "r", "a", "enter")
        await wait_until(pilot, lambda: screen.list.count == 0)
        assert "no images match" in line_text(screen.list, 0)
        assert screen.focused is screen.list


async def test_filters_favourites_model_and_sort(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("m")  # every model, then the models in name order
        assert isinstance(pilot.app.screen, ModelPicker)
        await pilot.press("down", "enter")
        assert screen.filters.model == "demo" and screen.list.count == 3
        await pilot.press("m", "down", "enter")
        assert screen.filters.model == "other" and screen.list.count == 1
        await pilot.press("m", "down", "escape")  # escape keeps the filter
        assert screen.filters.model == "other" and screen.list.count == 1
        await pilot.press("m", "home", "enter")
        assert screen.filters.model is None and screen.list.count == 4
        await pilot.press("o")
        assert "[bold]lighthouse[/bold]" in line_text(screen.list, 0)
        await pilot.press("o", "t")  # today: everything was made just now
        assert screen.list.count == 4
        await pilot.press("asterisk")
        assert screen.list.count == 0
        await pilot.press("asterisk")
        assert screen.list.count == 4


async def test_open_shows_the_image_and_every_setting(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("end", "enter")
        detail = pilot.app.screen
        assert isinstance(detail, GalleryDetailScreen)
        text = str(detail.query_one("#detail-settings").render())
        for expected in (
            "Prompt: a red [bold]lighthouse[/bold] at dusk",
            "Negative prompt: blurry",
            "Model: demo",
            "Sampler: Euler a",
            "Steps: 3",
            "CFG scale: 5.5",
            "Seed: 1234",
            "Size: 64x96",
        ):
            assert expected in text
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        image = detail.query_one("#detail-image").image
        assert image.size == (64, 96) and image.getpixel((0, 0)) == (0, 40, 200)
        # ← shows the newer image beside it; → at the oldest stays there.
        await pilot.press("right")
        assert detail.entry.seed == 1234
        detail.query_one("#detail-side").focus()  # a scrolling pane has ← → of its own
        await pilot.pause()
        await pilot.press("left")
        assert detail.entry.prompt == "a castle\non a hill"
        assert "Seed: 42" in str(detail.query_one("#detail-settings").render())
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert detail.query_one("#detail-image").image.size == (64, 64)
        await pilot.press("escape")
        assert pilot.app.screen is screen
        assert screen.list.entry.prompt == "a castle\non a hill"


async def test_favourite_persists_in_the_index(gallery: Gallery, gallery_dir: Path) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("down", "f")
        entry = screen.list.entry
        assert entry.prompt == "an old oak forest" and entry.favorite
        assert line_text(screen.list, 1).startswith("★")
        await pilot.press("asterisk")
        assert screen.list.count == 1
    with Gallery(gallery_dir) as again:
        favourites = again.list(favorites=True)
        assert [e.prompt for e in favourites] == ["an old oak forest"]


async def test_favourite_from_the_large_view(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("enter", "f")
        assert "Favourite: yes" in str(pilot.app.screen.query_one("#detail-settings").render())
        await pilot.press("escape")
        assert pilot.app.screen is screen
        assert gallery.list(favorites=True)[0].prompt == "a quiet harbour"
        assert line_text(screen.list, 0).startswith("★")


async def test_delete_moves_to_trash_and_undo_restores(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("down")
        victim = screen.list.entry
        assert victim.path.exists()
        await pilot.press("d")
        assert not victim.path.exists()
        trashed = list((gallery.root / ".trash").rglob("*.png"))
        assert [p.name for p in trashed] == [victim.path.name]
        assert screen.list.count == 3
        assert victim.rel_path not in index_agrees_with_files(gallery)
        assert all(victim.prompt not in line_text(screen.list, y) for y in range(3))
        await pilot.press("u")
        assert victim.path.exists()
        assert Image.open(victim.path).text["parameters"].startswith("an old oak forest")
        assert screen.list.count == 4
        assert victim.rel_path in index_agrees_with_files(gallery)
        assert not list((gallery.root / ".trash").rglob("*.png"))
        await pilot.press("u")  # nothing left to undo: nothing changes
        assert screen.list.count == 4
        # A deletion can still be undone after the gallery was closed and opened again.
        victim = screen.list.entry
        await pilot.press("d", "escape")
        assert not victim.path.exists()
        await pilot.app.push_screen(GalleryScreen(gallery))
        again = await opened(pilot)
        assert again.list.count == 3
        await pilot.press("u")
        assert again.list.count == 4 and victim.path.exists()


async def test_copy_puts_the_parameters_text_on_the_clipboard(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("end", "c")
        expected = format_parameters(REQUESTS[0], SEEDS[0])
        assert pilot.app.clipboard == expected
        assert expected.startswith("a red [bold]lighthouse[/bold] at dusk\nNegative prompt: blurry")
        assert (
            pilot.app.clipboard
            == Image.open(gallery.list(sort="oldest")[0].path).text["parameters"]
        )


async def test_compare_highlights_the_settings_that_differ(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("equals_sign")  # nothing marked: a hint, no screen
        assert pilot.app.screen is screen
        await pilot.press("down", "space")  # the oak forest
        assert line_text(screen.list, 1)[1] == "◆"
        await pilot.press("down", "equals_sign")  # against the castle
        compare = pilot.app.screen
        assert isinstance(compare, GalleryCompareScreen)
        assert compare.left.prompt == "an old oak forest"
        assert compare.right.prompt == "a castle\non a hill"
        assert compare.differing == ["Prompt", "Steps", "CFG scale", "Seed"]
        lines = plain(compare.query_one("#compare-table Static")).splitlines()
        marked = {line.split()[2] for line in lines if line.lstrip().startswith("≠")}
        assert marked == {"Prompt", "Steps", "CFG", "Seed"}
        assert any("Model" in line and "demo" in line for line in lines)
        await pilot.press("escape")
        assert pilot.app.screen is screen


async def test_help_and_footer_show_every_gallery_key(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        shown = {b.action for b in screen.BINDINGS if getattr(b, "show", False) and b.description}
        assert {k.action for k in GALLERY_KEYS} <= shown
        await pilot.press("f1")
        help_screen = pilot.app.screen
        assert isinstance(help_screen, GalleryHelpScreen)
        text = " ".join(plain(help_screen.query_one("Static")).split())
        for key in GALLERY_KEYS:
            assert key.help[:30] in text
        await pilot.press("escape")
        assert pilot.app.screen is screen


def synthetic_rows(count: int) -> Any:
    rng = random.Random(0)
    start = time.time() - count * 60
    words = "cat dog castle forest portrait city night rain neon ocean dragon".split()
    for i in range(count):
        prompt = f"row {i} " + " ".join(rng.choices(words, k=6))
        yield IndexRow(
            path=f"synthetic/{i // 1000:03d}/{i:06d}.png",
            size=1000,
            mtime_ns=int((start + i * 60) * 1e9),
            created=start + i * 60,
            source="sdtui",
            prompt=prompt,
            model="demo",
            seed=i,
            width=512,
            height=512,
            steps=20,
            cfg=7.0,
        )


async def test_twenty_thousand_rows_scroll_without_loading_them_all(gallery_dir: Path) -> None:
    rows = 20_000
    with Gallery(gallery_dir) as g:
        index = GalleryIndex(g.index_path)
        index.add_rows(synthetic_rows(rows), batch=5000)
        index.close()
    with Gallery(gallery_dir) as g:
        async with Host(g).run_test(size=SIZE) as pilot:
            screen = await opened(pilot)
            widget = screen.list
            assert widget.count == rows
            assert line_text(widget, 0)[2:].lstrip().split()[0:1]  # drawn
            assert "row 19999 " in line_text(widget, 0)
            assert "row 19998 " in line_text(widget, 1)
            for _ in range(5):
                await pilot.press("pagedown")
            await pilot.press("end")
            await pilot.pause()
            assert widget.cursor == rows - 1
            assert widget.entry.seed == 0
            height = widget.scrollable_content_region.height
            assert "row 0 " in line_text(widget, height - 1)
            # The thumbnail of a row without a file says so, and nothing breaks.
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            assert "no preview" in str(screen.query_one("#gallery-info").render())
            fetched = widget.pages.rows_fetched
            # The first pages, a page scrolled past, the last pages: not 20,000 rows.
            assert fetched <= 4 * widget.pages.page_size, fetched
            assert widget.pages.pages_held <= widget.pages.max_pages
            await pilot.press("home", "slash", *"row 12345", "enter")
            await wait_until(pilot, lambda: widget.count == 1)
            assert widget.entry.seed == 12345


async def test_remix_puts_every_field_into_the_editor(
    demo_model_dir: Path, gallery_dir: Path
) -> None:
    with Gallery(gallery_dir) as g:
        save_image(g, REQUESTS[0], SEEDS[0], 10)
        save_image(g, REQUESTS[1], SEEDS[1], 20)
    app = SdtuiApp(load_settings({"model": "demo"}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        screen = await opened(pilot)
        assert screen.list.count == 2
        await wait_until(pilot, lambda: len(app.history.entries) == 2)
        # Delete the newest, then remix the other from its large view.
        await pilot.press("d")
        assert screen.list.count == 1
        await pilot.press("enter")
        assert isinstance(app.screen, GalleryDetailScreen)
        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen is app.studio)
        await pilot.pause()
        assert app.prompt_editor.text == "a red [bold]lighthouse[/bold] at dusk"
        assert app.negative_editor.text == "blurry"
        expected = {
            "model": "demo",
            "scheduler": "Euler a",
            "steps": "3",
            "cfg": "5.5",
            "seed": "1234",
            "width": "64",
            "height": "96",
            "count": "1",
        }
        assert {name: app.params.value(name) for name in expected} == expected
        assert app.build_request() == REQUESTS[0].replace(seed=1234)
        assert app.focused is app.prompt_editor
        # The history beside the editor no longer lists the deleted image.
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        assert app.history.entries[0].seed == 1234
        await app.workers.wait_for_complete()


async def test_remix_of_an_image_without_settings_changes_nothing(gallery_dir: Path) -> None:
    with Gallery(gallery_dir) as g:
        Image.new("RGB", (32, 32), "red").save(gallery_dir / "plain.png")
        g.sync()
        async with Host(g).run_test(size=SIZE) as pilot:
            screen = await opened(pilot)
            assert screen.list.count == 1
            await pilot.press("r")
            assert pilot.app.screen is screen


async def test_command_palette_runs_gallery_actions(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"Gallery: Fav")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: pilot.app.screen is screen)
        await wait_until(pilot, lambda: bool(gallery.list(favorites=True)))
        assert gallery.list(favorites=True)[0].prompt == "a quiet harbour"


def cell_colours(widget: Any, y: int) -> set[tuple[int, int, int]]:
    colours = set()
    for segment in widget.render_line(y):
        style = segment.style
        for colour in (style.color, style.bgcolor) if style else ():
            if colour is not None and colour.triplet is not None:
                colours.add(tuple(colour.triplet))
    return colours


async def test_grid_shows_thumbnails_and_moves_in_two_directions(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("down", "g")
        grid = screen.list
        assert isinstance(grid, GalleryGrid) and screen.focused is grid
        assert grid.cursor == 1  # the same image stays highlighted
        # Each cell's picture is the image's own colour (images are one flat colour).
        await wait_until(pilot, lambda: (120, 40, 80) in cell_colours(grid, 2))
        assert (80, 40, 120) in cell_colours(grid, 2)  # the second newest, beside it
        caption = line_text(grid, IMAGE_LINES)
        assert "a quiet harbour"[:10] in caption and "an old oak"[:10] in caption
        assert grid.columns >= 3
        await pilot.press("right", "right")
        assert grid.cursor == 3
        await pilot.press("left", "up")
        assert grid.cursor == 0
        await pilot.press("enter")
        assert isinstance(pilot.app.screen, GalleryDetailScreen)
        assert pilot.app.screen.entry.prompt == "a quiet harbour"
        await pilot.press("escape", "g")
        assert screen.list is screen.query_one("#gallery-list") and screen.list.cursor == 0


async def test_grid_over_many_rows_loads_only_what_is_in_view(gallery_dir: Path) -> None:
    rows = 5_000
    with Gallery(gallery_dir) as g:
        index = GalleryIndex(g.index_path)
        index.add_rows(synthetic_rows(rows), batch=5000)
        index.close()
    with Gallery(gallery_dir) as g:
        async with Host(g).run_test(size=SIZE) as pilot:
            screen = await opened(pilot)
            await pilot.press("g", "pagedown", "pagedown", "end")
            grid = screen.list
            assert grid.cursor == rows - 1 and grid.entry.seed == 0
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            assert "no image" in "".join(
                line_text(grid, y) for y in range(grid.scrollable_content_region.height)
            )
            assert grid.pages.rows_fetched <= 4 * grid.pages.page_size
            assert len(grid._thumbs) <= 3 * 8 * grid.columns


async def test_keys_typed_in_one_burst_after_slash_go_to_the_search(gallery: Gallery) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        # As a fast paste over SSH delivers them: all queued before any is handled.
        for key, char in (("slash", "/"), ("r", "r"), ("e", "e"), ("d", "d")):
            pilot.app.post_message(events.Key(key, char))
        await wait_until(pilot, lambda: screen.list.count == 1)
        assert screen.search_input.value == "red"
        assert gallery.count() == 4  # "d" did not delete, "r" did not remix
        assert pilot.app.screen is screen


async def test_an_empty_gallery_says_so_and_every_key_is_harmless(gallery_dir: Path) -> None:
    with Gallery(gallery_dir) as g:
        async with Host(g).run_test(size=SIZE) as pilot:
            screen = await opened(pilot)
            assert "the gallery is empty" in line_text(screen.list, 0)
            await pilot.press(
                "enter", "f", "c", "r", "d", "u", "space", "equals_sign", "g", "right", "g"
            )
            await pilot.press("m", "enter", "t", "o", "asterisk")
            assert pilot.app.screen is screen and screen.list.count == 0
            assert "no images match" in line_text(screen.list, 0)
            await pilot.press("escape")
            assert not isinstance(pilot.app.screen, GalleryScreen)


async def test_an_index_that_fails_shows_why_and_the_app_goes_on(
    gallery: Gallery, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Host(gallery).run_test(size=SIZE) as pilot:
        screen = await opened(pilot)

        def broken(**filters: Any) -> list[Any]:
            raise GalleryError("the gallery index failed: disk I/O error")

        monkeypatch.setattr(gallery, "list", broken)
        await pilot.press("o")  # asks the index again
        await pilot.pause()
        assert "cannot read the gallery: the gallery index failed" in line_text(screen.list, 0)
        monkeypatch.undo()
        await pilot.press("o")
        await pilot.pause()
        assert screen.list.count == 4 and "a quiet harbour" in line_text(screen.list, 0)


async def test_escape_sequences_in_other_tools_prompts_are_never_drawn(gallery_dir: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat \x1b]52;c;ZXZpbA==\x07 \x1b[2J\nSteps: 20, Seed: 5")
    with Gallery(gallery_dir) as g:
        Image.new("RGB", (32, 32), "red").save(gallery_dir / "a1111.png", pnginfo=info)
        g.sync()
        async with Host(g).run_test(size=SIZE) as pilot:
            screen = await opened(pilot)
            assert "a cat" in line_text(screen.list, 0)
            await pilot.press("g")
            drawn = [line_text(screen.list, y) for y in range(IMAGE_LINES + 1)]
            drawn.append(line_text(screen.query_one("#gallery-list"), 0))
            assert "a cat" in drawn[IMAGE_LINES]
            assert not any("\x1b" in line or "\x07" in line for line in drawn)
