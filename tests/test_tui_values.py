"""Values typed into the fields are the values used, and the screen shows them as
they are: the seed, its lock, the size a model brings, the step after a cancel."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import test_tui_queue
from helpers import idle, wait_until
from PIL import Image
from test_tui_app import type_prompt
from textual.widgets import Input

from sdtui.tui.app import SdtuiApp
from sdtui.tui.messages import ModelLoaded

SIZE = (120, 40)

engines = test_tui_queue.engines  # the fixtures, shared
make_app = test_tui_queue.make_app


async def type_into(pilot: Any, app: SdtuiApp, name: str, text: str) -> None:
    """Clear a field and type into it key by key, as a user does."""
    field = app.params.query_one(f"#{name}", Input)
    field.focus()
    await pilot.pause()
    field.action_end()
    for _ in range(len(field.value)):
        await pilot.press("backspace")
    await pilot.press(*text)
    await pilot.pause()


async def generate_one(pilot: Any, app: SdtuiApp) -> Any:
    before = len(app.history.entries)
    app.prompt_editor.focus()
    await pilot.press("ctrl+g")
    await wait_until(pilot, lambda: len(app.history.entries) == before + 1)
    await idle(pilot, app)
    return app.history.entries[0]


def lock_box(app: SdtuiApp) -> str:
    return str(app.params.query_one("#seed_lock").render())


async def test_a_typed_seed_is_used_and_minus_one_means_random(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await type_prompt(pilot, app, "a seed typed by hand")
        app.params.set_value("steps", "1")
        assert not app.params.seed_locked and "[ ]" in lock_box(app)
        await type_into(pilot, app, "seed", "1234")
        assert app.params.seed_locked and "[x]" in lock_box(app)  # typing it locked it
        first = await generate_one(pilot, app)
        assert first.seed == 1234
        assert app.params.value("seed") == "1234"
        await type_into(pilot, app, "seed", "-1")
        assert not app.params.seed_locked and "[ ]" in lock_box(app)
        second = await generate_one(pilot, app)
        assert second.seed not in (1, 1234)  # random, not the digits of "-1"
        # Unlocked, the field shows the seed just used (not a lock).
        assert app.params.value("seed") == str(second.seed) and not app.params.seed_locked


async def test_sizes_follow_the_model_typed_until_the_user_picks_one(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        params = app.params
        assert (params.value("width"), params.value("height")) == ("64", "64")
        await type_into(pilot, app, "model", "sd15")
        assert (params.value("width"), params.value("height")) == ("512", "512")
        await type_into(pilot, app, "model", "demo")
        assert (params.value("width"), params.value("height")) == ("64", "64")
        # A model the table does not know: the engine's own report brings the size.
        await type_into(pilot, app, "model", "/some/local/model")
        app.post_message(
            ModelLoaded(0, "/some/local/model", "cpu", "fp32", 0.1, "", native_size=(96, 64))
        )
        await pilot.pause()
        assert (params.value("width"), params.value("height")) == ("96", "64")
        # A size typed by the user stays when the model changes.
        await type_into(pilot, app, "width", "128")
        await type_into(pilot, app, "model", "sd15")
        assert (params.value("width"), params.value("height")) == ("128", "64")


async def test_after_a_cancel_the_bar_and_the_preview_name_the_same_step(
    make_app: Any, engines: list, gallery_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        engine = engines[0]
        real_generate = engine.generate

        held, release = threading.Event(), threading.Event()

        def preview_on_odd_steps(request: Any, on_progress: Any = None, **kwargs: Any) -> Any:
            def progress(p: Any) -> None:  # a picture every other step, as throttled
                picture = Image.new("RGB", (8, 8)) if p.step % 2 else None
                on_progress(dataclasses.replace(p, preview=picture))
                if p.step == 4:
                    held.set()
                    release.wait(30)

            return real_generate(request, on_progress=progress, **kwargs)

        engine.generate = preview_on_odd_steps
        app.params.set_value("steps", "20")
        await type_prompt(pilot, app, "cancel me")
        await pilot.press("ctrl+g")
        step_text = app.status.query_one("#step-text")
        await wait_until(pilot, held.is_set)
        await wait_until(pilot, lambda: "step 4/20" in str(step_text.render()))
        await pilot.press("escape")
        release.set()
        await idle(pilot, app)
        bar_step = str(step_text.render()).split(" · ")[0]  # "step N/20"
        caption = str(app.preview.query_one("#caption").render())
        assert caption.startswith(f"cancelled at {bar_step}")
        n = int(bar_step.split()[1].split("/")[0])
        if n % 2 == 0:
            assert f"picture from step {n - 1}" in caption


# -- small terminals -----------------------------------------------------------------


async def test_at_80x24_the_seed_and_scheduler_show_whole(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await idle(pilot, app)
        params = app.params
        params.set_value("seed", "3727060634")
        params.set_value("scheduler", "DPM++ 2M Karras")
        params.seed_locked = True
        await pilot.pause()
        for name in ("seed", "scheduler"):
            field = params.query_one(f"#{name}", Input)
            assert field.content_region.width >= len(field.value) + 1, name
        lock = params.query_one("#seed_lock")
        assert "[x] lock" in str(lock.render())
        assert lock.region.right <= app.screen.region.right


async def test_at_60x20_every_field_tab_reaches_is_on_screen(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await idle(pilot, app)
        screen = app.screen
        seen = set()
        for _ in range(16):
            await pilot.press("tab")
            await pilot.pause()
            focused = app.focused
            assert focused is not None
            seen.add(focused.id)
            visible = focused.region.intersection(screen.region)
            assert visible.area > 0, f"{focused.id} is focused off-screen"
            assert focused.region.bottom <= screen.region.bottom - 4  # above status+footer
        assert {"prompt", "negative", "model", "seed", "count"} <= seen
        assert not app.query_one("#right").display  # too narrow for the preview pane


async def test_the_footer_keeps_its_last_cell_blank(make_app: Any) -> None:
    app = make_app()
    for width in (60, 80, 100):
        async with app.run_test(size=(width, 24)) as pilot:
            await idle(pilot, app)
            footer = app.screen.query_one("FittingFooter")
            keys = [k for k in footer.query("FooterKey") if not k.has_class("-command-palette")]
            right = max(k.region.right for k in keys)
            palette = footer.query_one(".-command-palette")
            # Nothing overflows under the palette key (it showed through at the edge).
            assert right <= palette.region.x
            assert sum(k.region.width for k in keys) <= palette.region.x
        app = make_app()
