"""The terminal app driven by keys, with the tiny demo model and a real gallery."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import gallery_pngs, idle, wait_until
from PIL import Image

from sdtui.config import load_settings
from sdtui.errors import ModelNotFoundError
from sdtui.tui import app as app_module
from sdtui.tui.app import SdtuiApp
from sdtui.tui.help_screen import HelpScreen
from sdtui.tui.runner import default_engine_factory
from sdtui.tui.session import load_session

SIZE = (120, 40)


class GatedEngine:
    """The real engine, with a gate that holds a generation after its first step,
    and a record of the prompts it was asked for, in order."""

    def __init__(self, settings: Any, preview: str = "off") -> None:
        self.real = default_engine_factory(settings, preview=preview)
        self.gate = threading.Event()
        self.gate.set()
        self.prompts: list[str] = []
        self.fail_next: Exception | None = None

    def load(self, model: str, on_status: Any = None) -> Any:
        return self.real.load(model, on_status)

    def generate(self, request, on_progress=None, cancel=None, on_image=None):  # noqa: ANN001
        self.prompts.append(request.prompt)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error

        def progress(p: Any) -> None:
            on_progress(p)
            if p.step == 1:
                self.gate.wait(60)

        return self.real.generate(request, progress, cancel, on_image)


@pytest.fixture
def engines() -> list[GatedEngine]:
    return []


@pytest.fixture
def make_app(demo_model_dir: Path, engines: list[GatedEngine]):  # noqa: ANN201
    def make(preview: str = "off", **overrides: Any) -> SdtuiApp:
        def factory(settings: Any) -> GatedEngine:
            engine = GatedEngine(settings, preview)
            engines.append(engine)
            return engine

        settings = load_settings({"model": "demo", **overrides})
        return SdtuiApp(settings, engine_factory=factory)

    return make


async def type_prompt(pilot: Any, app: SdtuiApp, text: str) -> None:
    app.prompt_editor.focus()
    app.prompt_editor.clear()
    await pilot.press(*("enter" if ch == "\n" else ch for ch in text))


async def set_field(pilot: Any, app: SdtuiApp, name: str, value: str) -> None:
    app.params.set_value(name, value)
    await pilot.pause()


def test_importing_the_app_loads_no_torch() -> None:
    code = (
        "import sys, sdtui.tui.app, sdtui.cli.app, sdtui.tui.runner\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


async def test_generate_saves_image_with_settings_and_lists_it(
    make_app: Any, gallery_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, app, "a red [bold]lighthouse[/bold]")
        await set_field(pilot, app, "steps", "3")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
        files = gallery_pngs(gallery_dir)
        assert len(files) == 1
        parameters = Image.open(files[0]).text["parameters"]
        entry = app.history.entries[0]
        assert parameters.startswith("a red [bold]lighthouse[/bold]\n")
        assert f"Seed: {entry.seed}" in parameters and "Steps: 3" in parameters
        assert "Size: 64x64" in parameters
        # Shown literally: the markup is text, not style.
        label = app.history.get_option_at_index(0).prompt
        assert "[bold]lighthouse[/bold]" in str(label)
        assert Path(app.preview.source) == entry.path
        # An unlocked seed shows the seed just used, ready to lock.
        assert app.params.value("seed") == str(entry.seed)
        assert app.last_error == ""


async def test_escape_cancels_and_saves_nothing(make_app: Any, engines: list, gallery_dir: Path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(engines))
        engines[0].gate.clear()
        await type_prompt(pilot, app, "a slow picture")
        await set_field(pilot, app, "steps", "50")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        step_text = app.status.query_one("#step-text")
        await wait_until(pilot, lambda: "step 1/50" in str(step_text.render()))
        await pilot.press("escape")
        engines[0].gate.set()
        await idle(pilot, app)
        assert gallery_pngs(gallery_dir) == []
        assert app.history.entries == []
        assert "cancelled" in app.status.state
        # The app goes on: the next request runs and is saved.
        await set_field(pilot, app, "steps", "2")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(gallery_pngs(gallery_dir)) == 1)


async def test_three_requests_wait_in_a_visible_queue_and_run_in_order(
    make_app: Any, engines: list, gallery_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(engines))
        await idle(pilot, app)
        engines[0].gate.clear()
        await set_field(pilot, app, "steps", "2")
        for word in ("first", "second", "third"):
            await type_prompt(pilot, app, word)
            await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.jobs.pending) == 2)
        queue = app.queue_list
        queue_text = " ".join(
            str(queue.get_option_at_index(i).prompt) for i in range(queue.option_count)
        )
        assert "second" in queue_text and "third" in queue_text
        assert "queue: 2 waiting" in str(app.status.query_one("#status-line").render())
        engines[0].gate.set()
        await wait_until(pilot, lambda: len(app.history.entries) == 3)
        await idle(pilot, app)
        assert engines[0].prompts == ["first", "second", "third"]
        # Newest first in the history.
        assert [e.request.prompt for e in app.history.entries] == ["third", "second", "first"]
        assert len(gallery_pngs(gallery_dir)) == 3


async def test_clear_queue_key_drops_waiting_requests(make_app: Any, engines: list) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(engines))
        await idle(pilot, app)
        engines[0].gate.clear()
        await set_field(pilot, app, "steps", "2")
        for word in ("kept", "dropped one", "dropped two"):
            await type_prompt(pilot, app, word)
            await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.jobs.pending) == 2)
        await pilot.press("f8")
        assert app.jobs.pending == []
        engines[0].gate.set()
        await idle(pilot, app)
        assert engines[0].prompts == ["kept"]


async def test_remix_restores_every_field_and_the_same_pixels(
    make_app: Any, gallery_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, app, "a castle\non a hill")
        app.negative_editor.load_text("blurry")
        for name, value in {
            "scheduler": "Euler a",
            "steps": "3",
            "cfg": "5.5",
            "seed": "1234",
            "width": "64",
            "height": "96",
            "count": "1",
        }.items():
            await set_field(pilot, app, name, value)
        app.params.seed_locked = True
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
        # Change everything, then remix from the history with one key.
        await type_prompt(pilot, app, "something else")
        app.negative_editor.load_text("")
        for name, value in {"scheduler": "DDIM", "steps": "9", "cfg": "2", "seed": "7"}.items():
            await set_field(pilot, app, name, value)
        await set_field(pilot, app, "width", "128")
        app.params.seed_locked = False
        await pilot.press("f2")
        assert app.focused is app.history
        await pilot.press("enter")
        assert app.prompt_editor.text == "a castle\non a hill"
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
        assert app.params.seed_locked
        assert app.focused is app.prompt_editor
        # Generating again gives the very same pixels.
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 2)
        await idle(pilot, app)
        first, second = (Image.open(e.path) for e in reversed(app.history.entries))
        assert first.size == (64, 96)
        assert first.tobytes() == second.tobytes()


async def test_variations_queue_new_seeds_with_the_same_settings(
    make_app: Any, gallery_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, app, "a fox")
        await set_field(pilot, app, "steps", "2")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await pilot.press("f2", "v")
        await wait_until(pilot, lambda: len(app.history.entries) == 1 + app_module.VARIATIONS)
        await idle(pilot, app)
        entries = app.history.entries
        assert {e.request.prompt for e in entries} == {"a fox"}
        assert {e.request.steps for e in entries} == {2}
        assert len({e.seed for e in entries}) == len(entries)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [("steps", "0", "steps"), ("width", "100", "multiple of 8"), ("cfg", "99", "guidance")],
)
async def test_invalid_input_is_refused_with_a_message(
    make_app: Any, gallery_dir: Path, field: str, value: str, words: str
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await type_prompt(pilot, app, "a valid prompt")
        await set_field(pilot, app, field, value)
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: words in app.last_error)
        assert words in str(app.status.query_one("#error-line").render())
        assert not app.jobs.busy and app.jobs.pending == []
        assert gallery_pngs(gallery_dir) == []
        # Nothing was lost: the prompt and the bad value are still there to fix.
        assert app.prompt_editor.text == "a valid prompt"
        assert app.params.value(field) == value


async def test_empty_prompt_is_refused(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: "empty" in app.last_error)
        assert "prompt" in app.last_error
        assert app.jobs.pending == []


async def test_a_failing_generation_is_shown_and_the_app_goes_on(
    make_app: Any, engines: list, gallery_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(engines))
        await idle(pilot, app)
        engines[0].fail_next = RuntimeError("CUDA kernel exploded")
        await type_prompt(pilot, app, "first try")
        await set_field(pilot, app, "steps", "2")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await idle(pilot, app)
        assert "CUDA kernel exploded" in app.last_error
        assert gallery_pngs(gallery_dir) == []
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(gallery_pngs(gallery_dir)) == 1)


async def test_a_model_that_cannot_load_is_reported(demo_model_dir: Path) -> None:
    class Broken:
        def load(self, model: str, on_status: Any = None) -> Any:
            raise ModelNotFoundError(f"no model called {model!r}", "try --model demo")

    app = SdtuiApp(load_settings({"model": "nonexistent"}), engine_factory=lambda s: Broken())
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        assert "no model called 'nonexistent'" in app.last_error
        assert "try --model demo" in app.last_error
        # Still usable: typing works and the keys still answer.
        await pilot.press(*"hi", "alt+up")
        assert app.prompt_editor.text == "hi"
        assert app.params.value("steps") == "26"


async def test_parameter_keys_work_from_the_prompt_editor(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, app, "cat")
        params = app.params
        await pilot.press("alt+up", "alt+up", "alt+down")
        assert params.value("steps") == "26"
        await pilot.press("alt+right")
        assert params.value("cfg") == "7.5"
        await pilot.press("alt+left", "alt+left")
        assert params.value("cfg") == "6.5"
        before = params.value("scheduler")
        await pilot.press("ctrl+t")
        assert params.value("scheduler") != before
        await pilot.press("ctrl+n")
        assert (params.value("width"), params.value("height")) == ("64", "96")
        await pilot.press("ctrl+r")
        seed = params.value("seed")
        assert seed.isdigit()
        await pilot.press("alt+l")
        assert params.seed_locked
        await pilot.press("ctrl+l")  # redraws the screen; the lock stays as it is
        assert params.seed_locked
        await pilot.press("ctrl+r")
        assert params.value("seed") != seed
        # None of these typed anything, and the editor kept the focus.
        assert app.prompt_editor.text == "cat"
        assert app.focused is app.prompt_editor


async def test_earlier_prompts_come_back_like_a_shell(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, app, "steps", "1")
        for word in ("one", "two"):
            await type_prompt(pilot, app, word)
            await pilot.press("ctrl+g")
        await idle(pilot, app)
        await type_prompt(pilot, app, "draft")
        await pilot.press("ctrl+up")
        assert app.prompt_editor.text == "two"
        await pilot.press("ctrl+up")
        assert app.prompt_editor.text == "one"
        await pilot.press("ctrl+down", "ctrl+down")
        assert app.prompt_editor.text == "draft"


async def test_help_opens_with_f1_and_question_mark_outside_text(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert app.prompt_editor.text == "?"  # typed into the prompt, not help
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f2", "question_mark")
        assert isinstance(app.screen, HelpScreen)


async def test_footer_and_palette_offer_the_actions(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer_keys = {b.binding.action for b in app.active_bindings.values() if b.binding.show}
        assert {"app.generate", "app.cancel", "app.help"} <= footer_keys
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Generate", "Cancel", "Clear queue", "Remix", "Variations"} <= titles
        assert any("theme" in t.lower() for t in titles)


async def test_keys_can_be_rebound_in_the_config(make_app: Any, isolated_dirs: Path) -> None:
    config = isolated_dirs / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[keys]\ngenerate = "f9"\nnot_an_action = "f10"\n')
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "not_an_action" in app.last_error
        await type_prompt(pilot, app, "rebound")
        await set_field(pilot, app, "steps", "1")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.jobs.pending == [] and app.history.entries == []
        await pilot.press("f9")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)


async def test_theme_choice_is_remembered(make_app: Any, isolated_dirs: Path) -> None:
    user_themes = isolated_dirs / "config" / "themes"
    user_themes.mkdir(parents=True)
    (user_themes / "mine.toml").write_text('primary = "#336699"\ndark = true\n')
    (user_themes / "broken.toml").write_text("primary = [\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "sdtui-dark"
        assert {"sdtui-dark", "sdtui-light", "sdtui-ember", "mine"} <= set(app.available_themes)
        assert "broken.toml" in app.last_error
        app.theme = "sdtui-ember"
        await pilot.pause()
    again = make_app()
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.theme == "sdtui-ember"


async def test_long_jobs_ring_the_bell(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "LONG_JOB_SECONDS", 0.0)
    app = make_app()
    rings: list[bool] = []
    monkeypatch.setattr(app, "bell", lambda: rings.append(True))
    async with app.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, app, "ding")
        await set_field(pilot, app, "steps", "1")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        assert rings == [True]


async def test_history_is_loaded_from_the_gallery_at_start(
    make_app: Any, gallery_dir: Path
) -> None:
    first = make_app()
    async with first.run_test(size=SIZE) as pilot:
        await type_prompt(pilot, first, "remember me")
        await set_field(pilot, first, "steps", "1")
        first.prompt_editor.focus()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(first.history.entries) == 1)
    second = make_app()
    async with second.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(second.history.entries) == 1)
        assert second.history.entries[0].request.prompt == "remember me"
        await pilot.press("ctrl+up")
        assert second.prompt_editor.text == "remember me"


async def test_live_step_previews_show_while_generating(make_app: Any, engines: list) -> None:
    app = make_app(preview="latent")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(engines))
        await idle(pilot, app)
        engines[0].gate.clear()
        await type_prompt(pilot, app, "watch it form")
        await set_field(pilot, app, "steps", "4")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        caption = app.preview.query_one("#caption")
        await wait_until(pilot, lambda: "step 1/4" in str(caption.render()))
        assert isinstance(app.preview.source, Image.Image)
        engines[0].gate.set()
        await wait_until(pilot, lambda: len(app.history.entries) == 1)


@pytest.mark.parametrize(
    ("renderer", "widget"),
    [("unicode", "UnicodeImage"), ("halfcell", "HalfcellImage"), ("tgp", "TGPImage")],
)
async def test_renderer_can_be_forced(make_app: Any, renderer: str, widget: str) -> None:
    app = make_app(renderer=renderer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert type(app.preview.query_one("#image")).__name__ == widget


@pytest.mark.parametrize("size", [(100, 30), (160, 50)])
async def test_layout_fits_small_and_large_terminals(make_app: Any, size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen.region
        for widget in (
            app.prompt_editor,
            app.negative_editor,
            app.params,
            app.preview,
            app.history,
            app.status,
        ):
            region = widget.region
            assert region.height > 0 and region.width >= 30, widget
            assert screen.contains_region(region), widget
        assert app.prompt_editor.region.height >= 4  # a few lines of prompt in view
        for name in ("model", "steps", "seed", "width", "height", "count"):
            field = app.params.query_one(f"#{name}")
            assert field.region.height == 1 and screen.contains_region(field.region), name
        footer = app.screen.query_one("Footer")
        assert footer.region.bottom == screen.bottom

        def footer_text() -> str:  # the footer fills in once the bindings settle
            return " ".join(str(w.render()) for w in footer.query("FooterKey"))

        await wait_until(pilot, lambda: "Generate" in footer_text())
        assert "Cancel" in footer_text()


def test_bad_renderer_flag_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sdtui", "--renderer", "crayon"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "--renderer" in result.stderr and "crayon" in result.stderr


async def test_quitting_stops_the_running_generation(make_app: Any, engines: list) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(engines))
        await idle(pilot, app)
        engines[0].gate.clear()
        await type_prompt(pilot, app, "long one")
        await set_field(pilot, app, "steps", "50")
        app.prompt_editor.focus()
        await pilot.press("ctrl+g", "ctrl+g")
        await wait_until(pilot, lambda: app.jobs.running is not None and app.jobs.pending)
        running = app.jobs.running
        await pilot.press("ctrl+q")  # work queued: the first press only asks
        await pilot.pause()
        assert app.is_running and not running.cancel.cancelled
        assert len(app.jobs.pending) == 1
        await pilot.press("ctrl+q")
        assert running.cancel.cancelled
        assert app.jobs.pending == []
        engines[0].gate.set()
    assert engines[0].prompts == ["long one"]
    # Both requests wait in the session file for the next start.
    session, problem = load_session()
    assert problem == "" and session is not None and session.clean_exit
    assert [r.prompt for r in session.queue] == ["long one", "long one"]


async def test_an_unknown_theme_is_reported_and_the_default_used(make_app: Any) -> None:
    app = make_app(theme="no-such-theme")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "no-such-theme" in app.last_error
        assert app.theme == "sdtui-dark"
        await type_prompt(pilot, app, "still works")
        assert app.prompt_editor.text == "still works"


async def test_worker_messages_after_quitting_are_ignored(make_app: Any) -> None:
    from sdtui.tui.messages import JobFailed, JobFinished, JobStatus

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
    # A job that was still loading reports after the screen is gone: no crash.
    app.on_job_status(JobStatus(1, "loaded"))
    app.on_job_failed(JobFailed(1, "late failure"))
    app.on_job_finished(JobFinished(1))
    assert app.is_shutting_down()
