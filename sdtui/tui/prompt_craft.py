"""Prompt craft in the app: expansion and style keys, and turning the editor's
request into the requests to queue (styles applied, wildcards resolved).

`PromptCraftMixin` goes before `App` in the app's bases; it needs the app's
`settings`, `prompt_editor`, `show_error` and `notify`.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import TextArea

from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.prompts.expand import ExpandSettings
from sdtui.prompts.prepare import prepare_requests
from sdtui.prompts.styles import BASE_NEGATIVE_KEY, BASE_PROMPT_KEY, STYLES_KEY, load_styles
from sdtui.prompts.syntax import parse_weighted
from sdtui.prompts.weighting import token_count
from sdtui.prompts.wildcards import has_wildcards


class PromptCraftMixin:
    """Actions `expand_prompt`, `pick_styles`, `pick_preset`, `save_preset`,
    `queue_combinations` (which needs the app's `submit`), and
    `prepare_for_queue`. Presets also need the app's `build_request`, `params`
    (with `load(request)`) and `negative_editor`."""

    active_styles: list[str]

    def _craft_styles(self) -> list[str]:
        if not hasattr(self, "active_styles"):
            self.active_styles = []
        return self.active_styles

    def prepare_for_queue(self, request: GenerationRequest) -> list[GenerationRequest]:
        """Styles, then wildcards (one request per image seed); ValidationError when bad."""
        addons = getattr(self, "addon_library", None)  # LoRA names checked, hashes recorded
        return prepare_requests(request, styles=self._craft_styles(), addons=addons)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        """Keep the token count and any weighting error on the prompt editor's border."""
        area = event.text_area
        if area.id == "prompt":
            # Text, not markup: the user's brackets must show as typed.
            area.border_subtitle = Text(prompt_summary(area.text))

    def restore_prompt_craft(self, request: GenerationRequest) -> GenerationRequest:
        """Before a remix: the prompt as written and the styles that were active.

        Re-queuing then makes the same image (wildcards pick by the same seed)
        and styles are not applied twice; an image made without styles turns
        the active styles off. When a style was since removed or changed, the
        final prompt is kept as it is.
        """
        extras = dict(request.extras)
        names = [n.strip() for n in extras.get(STYLES_KEY, "").split(",") if n.strip()]
        self.active_styles = []
        if not names or BASE_PROMPT_KEY not in extras:
            return request
        catalog = load_styles()
        if any(name not in catalog.styles for name in names) or request.seed is None:
            return request
        written = request.replace(
            prompt=extras[BASE_PROMPT_KEY], negative_prompt=extras.get(BASE_NEGATIVE_KEY, "")
        )
        # Only when the styles (and wildcard files) still make the very same prompt.
        try:
            again = prepare_requests(written.replace(count=1), names, catalog=catalog)[0]
        except ValidationError:
            return request
        if (again.prompt, again.negative_prompt) != (request.prompt, request.negative_prompt):
            return request
        self.active_styles = names
        return written

    def action_queue_combinations(self) -> None:
        """Queue one request for every combination of the prompt's wildcards."""
        app: Any = self
        try:
            request = app.build_request()
            if not (has_wildcards(request.prompt) or has_wildcards(request.negative_prompt)):
                app.show_error("The prompt has no {a|b} or __name__ wildcards to combine.")
                return
            requests = prepare_requests(request, self._craft_styles(), combinations=True)
        except ValidationError as exc:
            app.show_error(f"Not queued: {exc}")
            return
        for item in requests:
            app.submit(item)
        app.notify(f"{len(requests)} combinations queued.", markup=False)

    def action_expand_prompt(self) -> None:
        app: Any = self
        prompt = app.prompt_editor.text.strip()
        if not prompt:
            app.show_error("Write a few words first; expansion grows an existing prompt.")
            return
        try:
            settings = ExpandSettings.from_section(app.settings.section("prompts"))
        except ValidationError as exc:
            app.show_error(f"[prompts] in the config: {exc}")
            return
        from sdtui.tui.expand_screen import ExpandScreen

        app.push_screen(ExpandScreen(prompt, settings), callback=self._use_expansion)

    def _use_expansion(self, text: str | None) -> None:
        app: Any = self
        if not text:
            return
        editor = app.prompt_editor
        editor.load_text(text)  # TextArea's undo (ctrl+z) brings the short prompt back
        editor.move_cursor(editor.document.end)
        editor.focus()
        app.notify("Prompt expanded.", markup=False)

    def action_pick_styles(self) -> None:
        from sdtui.tui.style_screen import StylePickerScreen

        app: Any = self
        app.push_screen(StylePickerScreen(list(self._craft_styles())), callback=self._set_styles)

    def _set_styles(self, names: list[str] | None) -> None:
        if names is None:
            return
        self.active_styles = list(names)
        app: Any = self
        text = ", ".join(names) if names else "none"
        app.notify(f"Styles: {text}", markup=False)

    def _current_settings(self) -> GenerationRequest:
        """The form's settings; the prompt may still be empty (presets hold none)."""
        app: Any = self
        return GenerationRequest(
            prompt=app.prompt_editor.text.strip() or "(no prompt yet)",
            negative_prompt=app.negative_editor.text,
            **app.params.read(),
        )

    def action_pick_preset(self) -> None:
        from sdtui.tui.preset_screen import PresetPickerScreen

        app: Any = self
        app.push_screen(PresetPickerScreen(), callback=self._apply_preset)

    def _apply_preset(self, preset: Any) -> None:
        app: Any = self
        if preset is None:
            return
        try:
            request = preset.apply(self._current_settings())
        except ValidationError as exc:
            app.show_error(f"Preset not applied: {exc}")
            return
        params = app.params
        seed, locked = params.value("seed"), params.seed_locked
        params.load(request)
        params.set_value("seed", seed)  # a preset holds no seed: keep the user's
        params.seed_locked = locked
        if "negative_prompt" in preset.settings:
            app.negative_editor.load_text(request.negative_prompt)
        app.notify(f"Preset {preset.name} applied.", markup=False)

    def action_save_preset(self) -> None:
        from sdtui.tui.preset_screen import SavePresetScreen

        app: Any = self
        try:
            request = self._current_settings()
        except ValidationError as exc:
            app.show_error(f"Cannot save these settings: {exc}")
            return
        app.push_screen(SavePresetScreen(request), callback=self._preset_saved)

    def _preset_saved(self, path: str | None) -> None:
        if path:
            app: Any = self
            app.notify(f"Preset saved to {path}", markup=False)


def prompt_summary(prompt: str, tokenizer_or_family: Any = "sd1") -> str:
    """One line for the prompt editor's border: token use and any weighting error.

    With a family name the count is an estimate (shown with ≈); the tokens
    past one window are not lost, they go to the model in further chunks.
    """
    if not prompt.strip():
        return ""
    try:
        parse_weighted(prompt)
        problem = ""
    except ValidationError as exc:
        problem = f"{exc.message.removeprefix('prompt: ')} · "  # first: the border is narrow
    count, limit = token_count(tokenizer_or_family, prompt)
    chunks = max(1, -(-count // limit))
    chunk_note = f" ({chunks} chunks)" if chunks > 1 else ""
    approx = "≈" if isinstance(tokenizer_or_family, str) else ""
    return f"{problem}{approx}{count}/{limit} tokens{chunk_note}"
