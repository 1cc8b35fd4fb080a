"""Bad theme files are skipped with a message, at start, when chosen, and when remembered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sdtui.config import load_settings
from sdtui.errors import ValidationError
from sdtui.tui.app import SdtuiApp
from sdtui.tui.themes import load_themes, theme_from_toml

SIZE = (120, 40)
BREAKS_CSS = 'primary = "#ff0000"\n[variables]\nfooter-key-foreground = "{ }"\n'


class IdleEngine:
    """Loads nothing: these tests are about the screen, not images."""

    def load(self, model: str, on_status: Any = None) -> Any:
        raise RuntimeError("no model in this test")


def make_app(**overrides: Any) -> SdtuiApp:
    """The app, keeping every error it showed in `app.errors` (the status line keeps
    only the last)."""
    app = SdtuiApp(
        load_settings({"model": "demo", **overrides}), engine_factory=lambda s: IdleEngine()
    )
    shown: list[str] = []
    real = app.show_error

    def show_error(message: str) -> None:
        shown.append(message)
        real(message)

    app.show_error = show_error  # type: ignore[method-assign]
    app.errors = shown  # type: ignore[attr-defined]
    return app


@pytest.fixture
def user_themes(isolated_dirs: Path) -> Path:
    folder = isolated_dirs / "config" / "themes"
    folder.mkdir(parents=True)
    return folder


@pytest.mark.parametrize(
    "content, words",
    [
        (b'primary = "#ff0000"\nname = "caf\xe9"\n', "not UTF-8"),
        (b'primary = "#ff0000"\n[variables]\nx = 5\n', "[variables] x must be text"),
        (b'primary = "#ff0000"\ndark = "yes"\n', "dark must be true or false"),
        (b'primary = "#ff0000"\ntext_alpha = "lots"\n', "text_alpha must be a number"),
        (b'primary = "#ff0000"\nname = 7\n', "name must be text"),
        (b"x = " + b"[" * 3000 + b"]" * 3000 + b"\n", "not valid TOML"),
    ],
)
def test_bad_theme_files_are_explained(user_themes: Path, content: bytes, words: str) -> None:
    path = user_themes / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(ValidationError, match="theme bad.toml") as exc:
        theme_from_toml(path)
    assert words in str(exc.value)
    themes, problems = load_themes([user_themes])
    assert themes == [] and words in problems[0]


async def test_a_theme_that_breaks_the_css_is_refused_when_chosen(user_themes: Path) -> None:
    (user_themes / "breaks.toml").write_text(BREAKS_CSS)
    (user_themes / "notutf8.toml").write_bytes(b'primary = "#123456"\n# \xff\n')
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "notutf8.toml" in "\n".join(app.errors)
        assert app.theme == "sdtui-ember" or app.theme == "sdtui-dark"
        before = app.theme
        app.theme = "breaks"
        await pilot.pause()
        assert app.theme == before
        assert "breaks" in "\n".join(app.errors) and "cannot be used" in "\n".join(app.errors)
        app.theme = "sdtui-light"  # other themes still work
        await pilot.pause()
        assert app.theme == "sdtui-light"


async def test_a_remembered_broken_theme_is_skipped_at_start(
    user_themes: Path, isolated_dirs: Path
) -> None:
    (user_themes / "breaks.toml").write_text(BREAKS_CSS)
    state = isolated_dirs / "config" / "state.json"
    state.write_text(json.dumps({"theme": "breaks"}))
    for _ in range(2):  # and at the next start too
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.theme == "sdtui-dark"
            assert "breaks" in "\n".join(app.errors)
    # The choice stays the user's: fixing the file brings the theme back.
    (user_themes / "breaks.toml").write_text('primary = "#ff0000"\n')
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "breaks"
