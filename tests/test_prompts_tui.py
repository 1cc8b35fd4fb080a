"""The expansion and style dialogs, driven by keys in a small host app."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import OptionList, Static, TextArea

from sdtui.config import Settings
from sdtui.params import GenerationRequest
from sdtui.tui.expand_screen import ExpandScreen
from sdtui.tui.prompt_craft import PromptCraftMixin, prompt_summary
from sdtui.tui.style_screen import StylePickerScreen


class Host(PromptCraftMixin, App[None]):
    BINDINGS = [
        Binding("f6", "expand_prompt", "Expand", priority=True),
        Binding("f7", "pick_styles", "Styles", priority=True),
        Binding("alt+w", "queue_combinations", "Combinations", priority=True),
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.errors: list[str] = []
        self.queued: list[GenerationRequest] = []

    def compose(self) -> ComposeResult:
        yield TextArea(id="prompt")

    @property
    def prompt_editor(self) -> TextArea:
        return self.query_one("#prompt", TextArea)

    def show_error(self, message: str) -> None:
        self.errors.append(message)

    def build_request(self) -> GenerationRequest:
        return GenerationRequest(self.prompt_editor.text, seed=8)

    def submit(self, request: GenerationRequest) -> None:
        self.queued.append(request)


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> Path:
    import torch
    from test_expand import build_tiny_gpt2

    torch.set_num_threads(1)
    return build_tiny_gpt2(tmp_path_factory.mktemp("tui-expander"))


async def test_expand_key_offers_versions_and_enter_puts_one_in_the_editor(tiny_gpt2):
    from sdtui.prompts.expand import PromptExpander

    app = Host(Settings(extra={"prompts": {"expander": str(tiny_gpt2), "expand_count": 3}}))
    async with app.run_test(size=(100, 30)) as pilot:
        app.prompt_editor.load_text("a cat")
        await pilot.press("f6")
        await pilot.pause()
        assert isinstance(app.screen, ExpandScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert screen.expansion is not None
        expected = PromptExpander(str(tiny_gpt2)).expand(
            "a cat", count=3, seed=screen.expansion.seed, max_new_tokens=60
        )
        assert screen.expansion.candidates == expected.candidates
        assert screen.query_one(OptionList).option_count == len(expected.candidates)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, ExpandScreen)
        assert app.prompt_editor.text == expected.candidates[1]


async def test_expand_failure_is_shown_and_escape_keeps_the_prompt():
    app = Host(Settings(extra={"prompts": {"expander": "/no/such/model/folder"}}))
    async with app.run_test(size=(100, 30)) as pilot:
        app.prompt_editor.load_text("a cat")
        await pilot.press("f6")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(app.screen.query_one("#expand-status", Static).render())
        assert "no expander model folder" in status
        await pilot.press("escape")
        await pilot.pause()
        assert app.prompt_editor.text == "a cat"


async def test_expand_refuses_empty_prompt_and_bad_config():
    app = Host(Settings(extra={"prompts": {"expand_count": 0}}))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f6")
        app.prompt_editor.load_text("a cat")
        await pilot.press("f6")
        await pilot.pause()
        assert not isinstance(app.screen, ExpandScreen)
        assert "Write a few words" in app.errors[0]
        assert "count" in app.errors[1]


async def test_style_picker_ticks_in_order_and_queue_applies_them():
    app = Host(Settings())
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.screen, StylePickerScreen)
        detail = str(app.screen.query_one("#style-detail", Static).render())
        assert "3d model of {prompt}" in detail  # the first style, highlighted
        await pilot.press("down", "space", "up", "space", "enter")
        await pilot.pause()
        assert app.active_styles == ["anime", "3d-render"]
        [request] = app.prepare_for_queue(GenerationRequest("a fox", seed=1))
        assert request.prompt.startswith("professional 3d model of anime artwork of a fox")
        assert dict(request.extras)["Styles"] == "anime, 3d-render"

        await pilot.press("f7")
        await pilot.pause()
        await pilot.press("space", "escape")  # a change, then cancel: nothing changes
        await pilot.pause()
        assert app.active_styles == ["anime", "3d-render"]
        await pilot.press("f7")
        await pilot.pause()
        await pilot.press("delete", "enter")
        await pilot.pause()
        assert app.active_styles == []


async def test_combinations_key_queues_every_prompt_with_one_seed():
    app = Host(Settings())
    async with app.run_test(size=(100, 30)) as pilot:
        app.prompt_editor.load_text("a {red|blue} {cat|owl|fox}")
        await pilot.press("alt+w")
        await pilot.pause()
        assert len(app.queued) == 6 and {r.seed for r in app.queued} == {8}
        assert len({r.prompt for r in app.queued}) == 6
        app.prompt_editor.load_text("a plain fox")
        await pilot.press("alt+w")
        await pilot.pause()
        assert len(app.queued) == 6 and "no {a|b}" in app.errors[-1]


def test_queue_resolves_wildcards_per_image():
    app = Host(Settings())
    made = app.prepare_for_queue(GenerationRequest("a {red|blue} cat", seed=3, count=2))
    assert [r.seed for r in made] == [3, 4] and all("{" not in r.prompt for r in made)


def test_remix_of_an_unstyled_or_orphaned_image_turns_styles_off():
    app = Host(Settings())
    app.active_styles = ["anime"]
    plain = GenerationRequest("a plain fox", seed=1)
    assert app.restore_prompt_craft(plain) == plain
    assert app.active_styles == []
    gone = plain.replace(extras={"Styles": "deleted-style", "Style base prompt": "fox"})
    assert app.restore_prompt_craft(gone).prompt == "a plain fox"
    assert app.active_styles == []
    # A style whose template changed since: the final prompt stays.
    changed = plain.replace(extras={"Styles": "anime", "Style base prompt": "fox"})
    assert app.restore_prompt_craft(changed).prompt == "a plain fox"
    assert app.active_styles == []


def test_prompt_summary_counts_and_reports_errors():
    assert prompt_summary("a red cat") == "≈3/75 tokens"
    assert prompt_summary("  ") == ""
    assert prompt_summary("cat, " * 40).startswith("≈80/75 tokens (2 chunks)")
    assert prompt_summary("a (red cat").startswith("'(' is never closed (add ')') at column 3")


async def test_prompt_border_shows_tokens_and_errors_as_typed():
    app = Host(Settings())
    async with app.run_test(size=(100, 30)) as pilot:
        app.prompt_editor.focus()
        await pilot.press(*"a [x (red")
        await pilot.pause()
        subtitle = str(app.prompt_editor.border_subtitle)
        assert subtitle.startswith("'(' is never closed") and subtitle.endswith("tokens")
        await pilot.press(*")]")
        await pilot.pause()
        assert str(app.prompt_editor.border_subtitle) == "≈3/75 tokens"


async def test_app_queues_styled_wildcard_prompts_per_image(demo_model_dir, gallery_dir):
    """In the real app: f7 picks a style, ctrl+g queues one request per image seed."""
    from sdtui.config import load_settings
    from sdtui.gallery.metadata import read_metadata
    from sdtui.tui.app import SdtuiApp
    from sdtui.tui.runner import default_engine_factory

    asked: list[GenerationRequest] = []

    class Recording:
        def __init__(self, settings):
            self.real = default_engine_factory(settings, preview="off")

        def load(self, model, on_status=None):
            return self.real.load(model, on_status)

        def generate(self, request, on_progress=None, cancel=None, on_image=None):
            asked.append(request)
            return self.real.generate(request, on_progress, cancel, on_image)

    app = SdtuiApp(load_settings({"model": "demo"}), engine_factory=Recording)
    async with app.run_test(size=(120, 40)) as pilot:
        app.prompt_editor.load_text("a {red|blue} fox")
        for name, value in (("steps", "1"), ("seed", "5"), ("count", "2")):
            app.params.set_value(name, value)
        app.params.seed_locked = True
        await pilot.pause()
        await pilot.press("f7")
        await pilot.pause()
        await pilot.press("down", "space", "enter")  # "anime"
        await pilot.pause()
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        for _ in range(1200):
            await pilot.pause(0.05)
            if len(asked) == 2 and not app.jobs.busy and not app.jobs.pending:
                break
        await pilot.pause()
        # A remix brings back the prompt as written and its style, and makes the same image.
        first = asked[0]
        app.remix_request(first)
        await pilot.pause()
        assert app.prompt_editor.text == "a {red|blue} fox"
        assert app.active_styles == ["anime"]
        app.prompt_editor.focus()
        await pilot.press("ctrl+g")
        for _ in range(1200):
            await pilot.pause(0.05)
            if len(asked) == 3 and not app.jobs.busy and not app.jobs.pending:
                break
        assert (asked[2].prompt, asked[2].seed) == (first.prompt, first.seed)
        asked.pop()
    from sdtui.prompts.wildcards import resolve_wildcards

    assert [r.seed for r in asked] == [5, 6]
    for r in asked:
        picked = resolve_wildcards("a {red|blue} fox", r.seed)[0]
        assert r.prompt.startswith(f"anime artwork of {picked}")
        assert dict(r.extras)["Styles"] == "anime"
    saved = sorted(p for p in gallery_dir.rglob("*.png") if ".sdtui" not in p.parts)
    assert len(saved) == 3
    assert {read_metadata(p).extras["Wildcard prompt"] for p in saved} == {
        "anime artwork of a {red|blue} fox, anime style, key visual, vibrant, studio anime, "
        "highly detailed"
    }


async def test_app_saves_and_applies_presets_by_key(demo_model_dir):
    from textual.widgets import Input

    from sdtui.config import config_dir, load_settings
    from sdtui.prompts.presets import load_preset
    from sdtui.tui.app import SdtuiApp
    from sdtui.tui.preset_screen import PresetPickerScreen, SavePresetScreen

    app = SdtuiApp(load_settings({"model": "demo"}))
    async with app.run_test(size=(120, 40)) as pilot:
        for name, value in (("steps", "13"), ("cfg", "4.5"), ("width", "96"), ("seed", "77")):
            app.params.set_value(name, value)
        app.params.seed_locked = True
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SavePresetScreen)
        app.screen.query_one(Input).focus()
        await pilot.press(*"mine", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, SavePresetScreen)
        saved = load_preset("mine")
        assert (saved.settings["steps"], saved.settings["cfg"], saved.settings["width"]) == (
            13,
            4.5,
            96,
        )
        assert (config_dir() / "presets" / "mine.toml").is_file()

        # Saving under a taken name is refused inside the dialog; nothing is overwritten.
        before = (config_dir() / "presets" / "mine.toml").read_bytes()
        app.params.set_value("steps", "30")
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one(Input).focus()
        await pilot.press(*"mine", "enter")
        await pilot.pause()
        assert "already exists" in str(app.screen.query_one("#preset-note", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        assert (config_dir() / "presets" / "mine.toml").read_bytes() == before

        # Applying: the list is sorted, so "fast-draft" is first and "mine" follows "final".
        await pilot.press("f9")
        await pilot.pause()
        assert isinstance(app.screen, PresetPickerScreen)
        names = [p.name for p in app.screen.ordered]
        await pilot.press(*["down"] * names.index("mine"), "enter")
        await pilot.pause()
        assert (app.params.value("steps"), app.params.value("width")) == ("13", "96")
        assert app.params.value("seed") == "77" and app.params.seed_locked
        await pilot.press("f9")
        await pilot.pause()
        await pilot.press(*["down"] * names.index("fast-draft"), "enter")
        await pilot.pause()
        assert (app.params.value("steps"), app.params.value("width")) == ("12", "384")


async def test_style_ticks_typed_together_are_all_applied():
    """Keys that arrive in one burst (as over SSH) must not lose a tick."""
    from textual import events

    app = Host(Settings())
    async with app.run_test(size=(100, 40)) as pilot:
        app.active_styles = ["watercolor"]
        await pilot.press("f7")
        await pilot.pause()
        # All five keys land in the app's queue at once, as a terminal burst does.
        keys = [("down", None), ("space", " "), ("down", None), ("space", " "), ("enter", "\r")]
        for key, char in keys:
            app.post_message(events.Key(key, char))
        await pilot.pause()
        await pilot.pause()
        assert app.active_styles == ["watercolor", "anime", "cinematic"]
