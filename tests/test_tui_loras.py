"""The app's LoRA picker (F10): search, insert at the cursor, generate, remix."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import lora_files
import pytest
from helpers import gallery_pngs, idle, wait_until
from PIL import Image

from sdtui.config import load_settings
from sdtui.tui.addon_picker import AddonPickerScreen
from sdtui.tui.app import SdtuiApp
from sdtui.tui.runner import default_engine_factory

SIZE = (120, 40)


@pytest.fixture(scope="module")
def made_files(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("made")
    lora_files.write_kohya_lora(demo_model_dir, root / "inkwash.safetensors")
    lora_files.write_diffusers_lora(demo_model_dir, root / "alpha.safetensors")
    lora_files.write_embedding(root / "badhands.safetensors")
    return root


@pytest.fixture
def app(made_files: Path, tmp_path: Path, demo_model_dir: Path) -> SdtuiApp:
    loras, embeddings = tmp_path / "loras", tmp_path / "embeddings"
    loras.mkdir()
    embeddings.mkdir()
    for name in ("inkwash", "alpha"):
        shutil.copy(made_files / f"{name}.safetensors", loras / f"{name}.safetensors")
    shutil.copy(made_files / "badhands.safetensors", embeddings / "badhands.safetensors")
    settings = load_settings({"model": "demo", "loras": loras, "embeddings": embeddings})

    def factory(s: Any) -> Any:
        return default_engine_factory(s, preview="off")

    return SdtuiApp(settings, engine_factory=factory)


async def test_picker_searches_inserts_at_the_cursor_and_the_image_records_it(
    app: SdtuiApp, gallery_dir: Path
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        app.prompt_editor.load_text("a cat at night")
        app.prompt_editor.focus()
        app.prompt_editor.move_cursor((0, 5))  # after "a cat"
        await pilot.press("f10")
        await wait_until(pilot, lambda: isinstance(app.screen, AddonPickerScreen))
        picker = app.screen
        assert [f.name for f in picker.shown] == ["alpha", "badhands", "inkwash"]
        await pilot.press(*"1girl")  # a training tag of inkwash only
        assert [f.name for f in picker.shown] == ["inkwash"]
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, AddonPickerScreen))
        assert app.prompt_editor.text == "a cat <lora:inkwash:1> at night"
        # An embedding goes in by its name.
        app.prompt_editor.move_cursor((0, len(app.prompt_editor.text)))
        await pilot.press("f10")
        await wait_until(pilot, lambda: isinstance(app.screen, AddonPickerScreen))
        await pilot.press(*"badh", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, AddonPickerScreen))
        assert app.prompt_editor.text == "a cat <lora:inkwash:1> at night badhands"
        app.params.set_value("seed", "5")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
    (png,) = gallery_pngs(gallery_dir)
    with Image.open(png) as image:
        parameters = image.text["parameters"]
    assert parameters.startswith("a cat <lora:inkwash:1> at night badhands\n")
    assert 'Lora hashes: "inkwash: ' in parameters and 'TI hashes: "badhands: ' in parameters


async def test_escape_leaves_the_prompt_and_an_unknown_name_is_not_queued(
    app: SdtuiApp, gallery_dir: Path
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        app.prompt_editor.load_text("a cat")
        await pilot.press("f10")
        await wait_until(pilot, lambda: isinstance(app.screen, AddonPickerScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, AddonPickerScreen))
        assert app.prompt_editor.text == "a cat"
        # From the negative prompt an embedding goes there; a LoRA tag still goes to the prompt.
        app.negative_editor.focus()
        await pilot.press("f10")
        await wait_until(pilot, lambda: isinstance(app.screen, AddonPickerScreen))
        await pilot.press(*"badhands", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, AddonPickerScreen))
        assert app.negative_editor.text == "badhands"
        app.negative_editor.focus()
        await pilot.press("f10")
        await wait_until(pilot, lambda: isinstance(app.screen, AddonPickerScreen))
        await pilot.press(*"alpha", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, AddonPickerScreen))
        assert app.negative_editor.text == "badhands"
        assert "<lora:alpha:1>" in app.prompt_editor.text
        app.prompt_editor.load_text("a cat <lora:alpah:1>")
        await pilot.press("ctrl+g")
        await pilot.pause(0.2)
        assert not app.jobs.pending and not app.jobs.busy
    assert gallery_pngs(gallery_dir) == []


async def test_remix_from_history_finds_a_renamed_lora_and_names_a_missing_one(
    app: SdtuiApp, gallery_dir: Path
) -> None:
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        original = app.notify

        def notify(message: str, *args: Any, **kwargs: Any) -> None:
            notes.append(message)
            original(message, *args, **kwargs)

        app.notify = notify  # type: ignore[method-assign]
        app.prompt_editor.load_text("a cat <lora:alpha:0.7> <lora:inkwash:0.3>")
        app.params.set_value("seed", "9")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
        folder = app.settings.loras
        (folder / "alpha.safetensors").rename(folder / "alpha-v2.safetensors")
        (folder / "inkwash.safetensors").unlink()
        app.prompt_editor.load_text("something else")
        await pilot.press("f2", "enter")
        # The files are looked up (hashed) on a worker: the editor follows when it is done.
        expected = "a cat <lora:alpha-v2:0.7> <lora:inkwash:0.3>"
        await wait_until(pilot, lambda: app.prompt_editor.text == expected)
        await wait_until(pilot, lambda: any("Not found here: LoRA inkwash" in n for n in notes))


async def test_a_slow_lookup_by_hash_leaves_the_app_answering(
    app: SdtuiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdtui.tui import addon_picker

    release, returned = threading.Event(), threading.Event()
    real = addon_picker.restore_addons

    def slow(request: Any, library: Any) -> Any:
        release.wait(5)  # hashing a folder of big files
        try:
            return real(request, library)
        finally:
            returned.set()

    monkeypatch.setattr(addon_picker, "restore_addons", slow)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        app.prompt_editor.load_text("a cat <lora:alpha:0.7>")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
        app.prompt_editor.load_text("something else")
        await pilot.press("f2", "enter")
        await pilot.pause()
        # The remix is in the editor and keys still work while the lookup runs.
        assert app.prompt_editor.text == "a cat <lora:alpha:0.7>"
        app.prompt_editor.focus()
        await pilot.press("end", "!")
        assert app.prompt_editor.text.endswith("!") and not returned.is_set()
        release.set()
        await app.workers.wait_for_complete()
        # Edited meanwhile: the lookup does not overwrite what was typed.
        assert app.prompt_editor.text.endswith("!")


async def test_the_editor_flags_unknown_lora_names_as_you_type(app: SdtuiApp) -> None:
    def kinds() -> set[str]:
        return {kind for line in app.prompt_editor._highlights.values() for *_, kind in line}

    async with app.run_test(size=SIZE) as pilot:
        app.prompt_editor.focus()
        await pilot.press(*"a <lora:alpah:1>")
        await pilot.pause()
        assert "prompt.lora-unknown" in kinds()
        app.prompt_editor.load_text("")
        await pilot.press(*"a <lora:alpha:1>")
        await pilot.pause()
        assert "prompt.lora" in kinds() and "prompt.lora-unknown" not in kinds()
