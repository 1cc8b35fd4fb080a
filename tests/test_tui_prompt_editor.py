"""The prompt editor colours the weighting syntax as it is typed."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TextArea

from sdtui.config import load_settings
from sdtui.tui.app import SdtuiApp
from sdtui.tui.prompt_editor import PROMPT_STYLES


class IdleEngine:
    """Never asked to generate here; loading does nothing."""

    def load(self, model: str, on_status=None):  # noqa: ANN001, ANN201
        return None


def styles_by_text(editor: TextArea, row: int) -> dict[str, object]:
    return {seg.text.strip(): seg.style for seg in editor.render_line(row) if seg.text.strip()}


async def test_typed_weights_wildcards_and_errors_are_coloured(gallery_dir: Path) -> None:
    app = SdtuiApp(
        load_settings({"model": "demo", "gallery": str(gallery_dir)}),
        engine_factory=lambda settings: IdleEngine(),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"a (cat:1.3) on {red|blue}", "enter", *"ünder [dog] (open")
        await pilot.pause()
        editor = app.screen.query_one("#prompt", TextArea)
        assert editor.has_focus

        first = styles_by_text(editor, 0)
        weight = PROMPT_STYLES["prompt.weight"]
        assert first[":1.3"].color == weight.color
        assert first["("].color == PROMPT_STYLES["prompt.bracket"].color
        assert first["{red|blue}"].underline
        assert first["cat"].bold  # emphasised by the weight above 1
        assert not first["a"].bold  # plain words stay plain

        second = styles_by_text(editor, 1)
        assert second["dog"].dim  # [word] lowers the weight
        # The bracket that is never closed is marked as the error.
        error = PROMPT_STYLES["prompt.error"]
        assert any(
            text == "(" and style.bgcolor == error.bgcolor for text, style in second.items()
        )
        assert not second["ünder"].bold  # a non-ASCII word before a span keeps its place
