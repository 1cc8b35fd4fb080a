"""The app's img2img keys (history, gallery), the strength nudge, upscaling from the gallery."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from helpers import gallery_pngs, idle, wait_until
from PIL import Image

from sdtui.config import load_settings
from sdtui.gallery import Gallery
from sdtui.params import GenerationRequest
from sdtui.results import GeneratedImage, GenerationResult
from sdtui.tui.app import SdtuiApp
from sdtui.tui.gallery_screen import GalleryScreen

SIZE = (140, 44)


def save_image(gallery: Gallery, size: tuple[int, int] = (64, 64)) -> Any:
    request = GenerationRequest(prompt="a quiet harbour", model="demo", steps=2, seed=5,
                                width=64, height=64)  # fmt: skip
    generated = GeneratedImage(Image.new("RGB", size, (30, 90, 160)), 5, 0, request)
    return gallery.save(generated, GenerationResult(request, [generated], "demo", "cpu", "fp32"))


async def opened_gallery(pilot: Any) -> GalleryScreen:
    app = pilot.app
    await pilot.press("ctrl+o")
    await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen))
    await wait_until(pilot, lambda: app.screen.pages is not None)
    await pilot.pause()
    return app.screen


async def test_img2img_from_history_with_a_nudged_strength(demo_model_dir, gallery_dir) -> None:
    app = SdtuiApp(load_settings({"model": "demo"}))
    async with app.run_test(size=SIZE) as pilot:
        app.prompt_editor.load_text("a lighthouse")
        app.params.set_value("steps", "4")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
        first = app.history.entries[0]
        await pilot.press("f2", "alt+i")
        await pilot.pause()
        assert app.params.value("init_image") == str(first.path)
        assert app.params.value("strength") == "0.75"
        await pilot.press("alt+pageup", "alt+pageup")
        assert app.params.value("strength") == "0.85"
        await pilot.press("alt+pagedown")
        assert app.params.value("strength") == "0.8"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 2)
        await idle(pilot, app)
        made = app.history.entries[0].request
        assert (made.init_image, made.strength) == (str(first.path), 0.8)
        assert made.init_image_sha256 is not None
        assert len(gallery_pngs(gallery_dir)) == 2
        assert app.last_error == ""


async def test_img2img_from_the_gallery_takes_the_pictures_size(gallery_dir: Path) -> None:
    with Gallery(gallery_dir) as g:
        entry = save_image(g, size=(96, 80))  # e.g. a hires result: larger than its settings
    app = SdtuiApp(load_settings({"model": "demo"}))
    async with app.run_test(size=SIZE) as pilot:
        await opened_gallery(pilot)
        await pilot.press("i")
        await wait_until(pilot, lambda: app.screen is app.studio)
        await pilot.pause()
        assert app.params.value("init_image") == str(entry.path)
        assert (app.params.value("width"), app.params.value("height")) == ("96", "80")
        assert app.prompt_editor.text == "a quiet harbour"
        await app.workers.wait_for_complete()


async def test_a_missing_init_image_is_refused_and_the_app_goes_on(demo_model_dir, gallery_dir):
    app = SdtuiApp(load_settings({"model": "demo"}))
    async with app.run_test(size=SIZE) as pilot:
        app.prompt_editor.load_text("a boat")
        app.params.set_value("init_image", str(gallery_dir / "missing.png"))
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: "init image" in app.last_error)
        await idle(pilot, app)
        assert "no such file" in app.last_error
        assert not gallery_dir.exists() or not gallery_pngs(gallery_dir)


@pytest.mark.skipif(importlib.util.find_spec("spandrel") is None, reason="spandrel not installed")
async def test_upscale_from_the_gallery_makes_a_new_image(
    gallery_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from safetensors.torch import save_file
    from test_upscale import tiny_esrgan_state_dict

    folder = tmp_path / "upscalers"
    folder.mkdir()
    save_file(tiny_esrgan_state_dict(2), str(folder / "tiny-x2.safetensors"))
    monkeypatch.setenv("SDTUI_UPSCALERS", str(folder))
    with Gallery(gallery_dir) as g:
        source = save_image(g)
    app = SdtuiApp(load_settings({"model": "demo", "device": "cpu"}))
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened_gallery(pilot)
        await pilot.press("x")
        await wait_until(pilot, lambda: screen.list.count == 2, rounds=2400)
        files = gallery_pngs(gallery_dir)
        new = [p for p in files if p != source.path]
        assert len(new) == 1 and Image.open(new[0]).size == (128, 128)
        assert Image.open(source.path).size == (64, 64)  # the source stays as it was
        assert app.last_error == ""
        await app.workers.wait_for_complete()


async def test_upscale_without_an_upscaler_says_what_to_do(gallery_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SDTUI_UPSCALERS", str(tmp_path / "empty"))
    with Gallery(gallery_dir) as g:
        save_image(g)
    app = SdtuiApp(load_settings({"model": "demo"}))
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened_gallery(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert "upscaler: none in" in app.last_error
        assert screen.list.count == 1
        await app.workers.wait_for_complete()
