"""Other tools' images in the gallery: found by their prompts (CJK text too), remixed
with the same values, and shown alike in every view whatever control characters
their prompts hold."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui import workflows
from sdtui.display import one_line, printable
from sdtui.errors import ValidationError
from sdtui.gallery import Gallery
from sdtui.gallery.index import SCHEMA_VERSION, GalleryIndex
from sdtui.gallery.metadata import read_metadata
from sdtui.params import MAX_SEED
from sdtui.schedulers import canonical_scheduler

CORPUS = Path(__file__).parent / "data" / "readers"
IMAGES = sorted(p for p in CORPUS.iterdir() if p.suffix in (".png", ".jpg", ".jpeg", ".webp"))


def write_png(path: Path, parameters: str) -> Path:
    info = PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    return path


@pytest.fixture
def imported(gallery_dir: Path) -> Gallery:
    gallery = Gallery(gallery_dir)
    report = gallery.import_paths(IMAGES)
    assert not report.skipped
    return gallery


def test_search_finds_imported_prompts_including_cjk(imported: Gallery) -> None:
    # Each corpus prompt's words, as their source tests state them.
    assert [e.prompt for e in imported.list(search="goldfish")] == ["a smiling goldfish"]
    assert imported.count(search="hatsune miku") >= 25
    # "#テスト" / "テスト" sit inside longer runs of Japanese text in these prompts.
    japanese = imported.list(search="テスト", limit=100)
    assert len(japanese) >= 20 and all("テスト" in e.prompt for e in japanese)
    assert imported.count(search="スト") == len(japanese)  # part of a word, not a prefix
    assert imported.count(search="duck") == 2  # the A1111 PNG and its JPEG copy


def test_search_inside_chinese_text(gallery_dir: Path, tmp_path: Path) -> None:
    gallery = Gallery(gallery_dir)
    src = write_png(tmp_path / "zh.png", "一个女孩在海边散步\nSteps: 20, Seed: 5, CFG scale: 7")
    gallery.import_paths([src])
    assert [e.prompt for e in gallery.list(search="女孩")] == ["一个女孩在海边散步"]
    assert gallery.count(search="海边 女孩") == 1 and gallery.count(search="男孩") == 0


def test_old_index_is_upgraded_and_finds_cjk(gallery_dir: Path, tmp_path: Path) -> None:
    gallery = Gallery(gallery_dir)
    gallery.import_paths(
        [write_png(tmp_path / "zh.png", "海边的女孩\nSteps: 2, Seed: 1, Sampler: Euler")]
    )
    index_path = gallery.index_path
    gallery.close()
    # The index as schema 1 wrote it: raw text in the search table, its triggers.
    conn = sqlite3.connect(index_path)
    conn.executescript(
        "DROP TRIGGER images_ai; DROP TRIGGER images_ad; DROP TRIGGER images_au;"
        "INSERT INTO images_fts (images_fts) VALUES ('delete-all');"
        "INSERT INTO images_fts (rowid, prompt, negative_prompt)"
        "  SELECT id, prompt, negative_prompt FROM images;"
        "UPDATE meta SET value = '1' WHERE key = 'schema';"
    )
    conn.close()
    index = GalleryIndex(index_path)
    assert index.query_one("SELECT value FROM meta WHERE key = 'schema'")[0] == str(SCHEMA_VERSION)
    index.close()
    again = Gallery(gallery_dir)
    assert again.count(search="女孩") == 1


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_remix_of_each_corpus_file_keeps_its_values(path: Path) -> None:
    meta = read_metadata(path)
    if not (64 <= meta.width <= 2048 and 64 <= meta.height <= 2048):
        # sd-parsers cropped these to 1x1 pixels and the file states no size: refused clearly.
        with pytest.raises(ValidationError, match="width|height"):
            meta.request()
        return
    request = meta.request()
    assert (request.prompt, request.negative_prompt) == (meta.prompt, meta.negative_prompt)
    for field, value in (("steps", meta.steps), ("cfg", meta.cfg_scale), ("model", meta.model)):
        if value is not None:
            assert getattr(request, field) == value
    assert (request.width, request.height) == (meta.width, meta.height)
    if meta.seed is not None and meta.seed <= MAX_SEED:
        assert request.seed == meta.seed
    elif meta.seed is not None:  # beyond sdtui's seeds: kept, exactly, for the record
        assert request.seed is None and dict(request.extras)["Original seed"] == str(meta.seed)
    try:
        assert request.scheduler == canonical_scheduler(meta.sampler)
    except KeyError:  # a sampler sdtui does not have is kept beside the default
        assert dict(request.extras)["Sampler"] == meta.sampler
    # A1111's hires fix keys become the request's own fields; every other key stays.
    taken = workflows.used_a1111_keys(meta.extras)
    for key, value in meta.extras.items():
        if key not in taken:
            assert dict(request.extras)[key] == value
    if "Hires upscale" in meta.extras:
        assert request.hires_scale == float(meta.extras["Hires upscale"])
        if "Denoising strength" in meta.extras:
            assert request.hires_denoise == float(meta.extras["Denoising strength"])


def test_control_characters_show_alike_in_every_view(tmp_path: Path) -> None:
    text = "a cat\ron a mat\x0bby \x1b]0;owned\x07the sea\nNegative prompt: dog\x0c\n"
    text += "Steps: 3, Seed: 1, CFG scale: 7"
    meta = read_metadata(write_png(tmp_path / "cr.png", text))
    # Line-ending controls become one newline; other controls stay, to be marked.
    assert meta.prompt == "a cat\non a mat\nby \x1b]0;owned\x07the sea"
    assert meta.negative_prompt == "dog"
    shown = printable(meta.prompt)  # info, gallery show, the settings pane
    assert shown == "a cat\non a mat\nby \ufffd]0;owned\ufffdthe sea"
    assert one_line(meta.prompt) == "a cat on a mat by \ufffd]0;owned\ufffdthe sea"  # lists, grid


def test_info_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    long_prompt = ", ".join(f"word{i}" for i in range(40_000))
    path = write_png(tmp_path / "long.png", f"{long_prompt}\nSteps: 3, Seed: 1, CFG scale: 7")
    shell = f"{sys.executable} -m sdtui info {path} | head -c 20 > /dev/null"
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shell}"], capture_output=True, text=True, timeout=120
    )
    assert done.stderr == "" and done.returncode == 0


def test_remix_of_an_imported_image_with_a_64_bit_seed(gallery_dir: Path) -> None:
    # sd-parsers test_fooocus.py: seed 6952411511246973023, beyond sdtui's 32-bit seeds.
    gallery = Gallery(gallery_dir)
    gallery.import_paths([CORPUS / "sdparsers-fooocus1_cropped.png"])
    (entry,) = gallery.list()
    assert entry.seed == 6952411511246973023 and entry.request is not None
    assert entry.remix_seed is None
    request = entry.request.replace(seed=entry.remix_seed, count=1)  # what remix does
    assert (request.prompt, request.steps, request.cfg) == ("a smiling goldfish", 30, 4.0)
    assert dict(request.extras)["Original seed"] == "6952411511246973023"
    (own,) = Gallery(gallery_dir).list(search="goldfish")
    assert own.seed == entry.seed


async def test_app_remixes_an_imported_fooocus_image(
    demo_model_dir: Path, gallery_dir: Path
) -> None:
    from sdtui.config import load_settings
    from sdtui.tui.app import SdtuiApp
    from sdtui.tui.gallery_screen import GalleryScreen
    from tests.helpers import wait_until

    with Gallery(gallery_dir) as gallery:
        gallery.import_paths([CORPUS / "sdparsers-fooocus1_cropped.png"])
    app = SdtuiApp(load_settings({"model": "demo"}))
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen))
        await wait_until(pilot, lambda: app.screen.pages is not None)
        await pilot.pause()
        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen is app.studio)
        await pilot.pause()
        assert app.prompt_editor.text == "a smiling goldfish"
        assert app.params.value("steps") == "30" and app.params.value("cfg") == "4"
