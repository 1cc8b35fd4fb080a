"""The app shows the loaded model's defaults: size, presets, steps, guidance, samplers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import idle

from sdtui.config import load_settings
from sdtui.families import model_defaults
from sdtui.tui.app import SdtuiApp
from sdtui.tui.model_defaults import apply_model_defaults

SIZE = (120, 40)


def _app(model: Path) -> SdtuiApp:
    return SdtuiApp(load_settings({"model": str(model)}))


async def test_a_local_sdxl_folder_shows_1024_and_sdxl_presets(family_model: Any) -> None:
    app = _app(family_model("sdxl"))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        params = app.params
        assert (params.value("width"), params.value("height")) == ("1024", "1024")
        assert params.cycle_size() == (832, 1216)  # SDXL's buckets, not SD 1.5's shapes
        assert params.value("scheduler") == "DPM++ 2M Karras"


async def test_a_tiny_sd3_model_shows_64_and_flow_samplers_only(family_model: Any) -> None:
    app = _app(family_model("sd3"))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        params = app.params
        assert (params.value("width"), params.value("height")) == ("64", "64")
        assert (params.value("steps"), params.value("cfg")) == ("28", "4.5")
        assert params.value("scheduler") == "Euler"
        seen = {params.cycle_scheduler() for _ in range(6)}
        assert seen == {"Euler", "Euler Karras", "Euler Exponential"}


class FakeForm:
    def __init__(self, **values: str) -> None:
        self.values = values

    def value(self, name: str) -> str:
        return self.values[name]

    def set_value(self, name: str, value: object) -> None:
        self.values[name] = str(value)


def test_values_typed_by_hand_stay_unless_the_new_model_cannot_use_them() -> None:
    form = FakeForm(width="512", height="512", steps="25", cfg="7", scheduler="DPM++ 2M Karras")
    sdxl = model_defaults("sdxl", (1024, 1024))
    assert apply_model_defaults(form, "sdxl-folder", sdxl) == []
    assert form.values["width"] == "1024" and form.values["cfg"] == "6"
    form.values.update(steps="40", scheduler="DDIM", width="1000")  # typed by hand
    notices = apply_model_defaults(form, "flux-folder", model_defaults("flux", (1024, 1024)))
    assert form.values["steps"] == "40"  # kept: FLUX can take 40 steps
    assert form.values["cfg"] == "3.5"  # not typed: follows the model
    assert form.values["scheduler"] == "Euler"  # DDIM cannot run on FLUX
    assert form.values["width"] == "992"  # FLUX sizes are multiples of 16
    assert any("DDIM does not fit flux" in n for n in notices)
    assert any("negative prompt is not used" in n for n in notices)


@pytest.mark.parametrize("model", ["demo"])
async def test_demo_defaults_stay_as_before(model: str, demo_model_dir: Path) -> None:
    app = SdtuiApp(load_settings({"model": model}))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        params = app.params
        assert (params.value("width"), params.value("steps"), params.value("cfg")) == (
            "64",
            "25",
            "7",
        )


async def test_switching_to_flux_in_the_form_uses_its_defaults_at_once(
    demo_model_dir: Path, family_model: Any, gallery_dir: Path
) -> None:
    from helpers import gallery_pngs, wait_until
    from PIL import Image

    app = SdtuiApp(load_settings({"model": "demo"}))
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        app.params.set_value("model", str(family_model("sd3")))
        app.params.set_value("steps", "2")  # typed by hand: kept
        app.prompt_editor.text = "a red boat"
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(gallery_pngs(gallery_dir)) == 1)
        await idle(pilot, app)
        with Image.open(gallery_pngs(gallery_dir)[0]) as image:
            parameters = image.text["parameters"]
        # The demo's DPM++ 2M Karras and CFG 7 were defaults, not choices: SD 3's apply.
        assert "Steps: 2, Sampler: Euler, CFG scale: 4.5" in parameters
        assert (app.params.value("scheduler"), app.params.value("cfg")) == ("Euler", "4.5")
        assert app.params.value("steps") == "2"
