"""One key table per screen: the footer shows the most used keys, F1 and the command
palette list every key once, and the config rebinds one screen's keys only."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import test_tui_queue
from helpers import idle, wait_until
from rich.console import Console
from test_tui_app import type_prompt
from textual.content import Content

from sdtui.tui.gallery_keys import SCOPES, GalleryHelpScreen
from sdtui.tui.gallery_screen import GalleryScreen
from sdtui.tui.help_screen import HelpScreen
from sdtui.tui.keys import KEY_ACTIONS, LIST_KEYS, keymap_from_config

SIZE = (120, 40)

engines = test_tui_queue.engines  # the fixtures, shared
make_app = test_tui_queue.make_app


def plain(static: Any, width: int = 140) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(static.content)
    return console.export_text()


def test_config_sub_tables_rebind_one_screen_and_bad_names_are_reported() -> None:
    keymap, problems = keymap_from_config(
        {"remix": "f6", "gallery": {"remix": "x", "nope": "y"}, "detail": {"remix": 5}},
        SCOPES,
    )
    assert keymap == {"main.remix": "f6", "gallery.remix": "x"}
    assert any("[keys.gallery] 'nope' is not an action" in p for p in problems)
    assert any("[keys.detail] remix must be a key name" in p for p in problems)


async def test_f1_and_the_palette_list_every_key_once_and_the_footer_the_main_ones(
    make_app: Any,
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        repeated = [t for t, n in Counter(titles).items() if n > 1]
        assert repeated == []
        for action in KEY_ACTIONS:
            if action.action != "command_palette":
                assert action.description in titles
        commands = {
            c.title: Content.from_markup(c.help).plain for c in app.get_system_commands(app.screen)
        }
        assert commands["Redraw"].endswith("[ctrl+l]")  # shown, not taken for markup
        assert commands["Lock seed"].endswith("[alt+l]")
        footer = {b.binding.id for b in app.active_bindings.values() if b.binding.show}
        shown = {f"main.{a.action}" for a in KEY_ACTIONS if a.show}
        assert shown <= footer and len(shown) <= 9  # the most used, to fit 80 columns
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = plain(app.screen.query_one("#help-body Static"))
        for action in KEY_ACTIONS:
            assert text.count(action.help[:28]) == 1, action.action
        for _keys, what in LIST_KEYS:
            assert what[:20] in text


async def test_a_main_screen_rebind_leaves_the_gallery_keys_alone(
    make_app: Any, isolated_dirs: Path
) -> None:
    config = isolated_dirs / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        '[keys]\nremix = "f11"\n\n[keys.gallery]\nfavorite = "ctrl+f"\n'
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        assert app.last_error == ""
        await type_prompt(pilot, app, "rebound")
        app.params.set_value("steps", "1")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen))
        screen = app.screen
        await wait_until(pilot, lambda: screen.pages is not None and screen.list.count)
        screen.list.focus()
        await pilot.press("r")  # the gallery's remix is still r
        await wait_until(pilot, lambda: not isinstance(app.screen, GalleryScreen))
        assert app.prompt_editor.text == "rebound"
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, GalleryScreen))
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, GalleryHelpScreen))
        text = plain(app.screen.query_one("Static"))
        fav = next(line for line in text.splitlines() if "favourite" in line)
        assert "ctrl+f" in fav and " f " not in f" {fav.split()[0]} "


def newest_prompt(app: Any) -> str:
    entries = app.history.entries
    return entries[0].request.prompt if entries else ""


async def test_j_and_k_move_in_the_history(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        app.params.set_value("steps", "1")
        for word in ("older", "newer"):
            await type_prompt(pilot, app, word)
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda w=word: newest_prompt(app) == w)
        await idle(pilot, app)
        await pilot.press("f2")
        assert app.history.highlighted == 0
        await pilot.press("j")
        assert app.history.highlighted == 1
        await pilot.press("k")
        assert app.history.highlighted == 0
