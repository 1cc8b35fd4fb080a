"""Themes as TOML data files: the built-in ones in `themes/`, the user's in the config folder.

A file's keys are the fields of `textual.theme.Theme`; `[variables]` sets CSS
variables. The chosen theme is remembered in `state.json` in the config folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from textual.app import App
from textual.theme import Theme

from sdtui.config import config_dir, ensure_private_dir
from sdtui.display import path_text
from sdtui.errors import ValidationError
from sdtui.regular_files import NotRegularFileError, read_regular_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

# A wheel installs the top-level themes/ folder as sdtui/themes; a source checkout
# (and an editable install) keeps it beside the package.
_PACKAGED_THEMES = Path(__file__).resolve().parents[1] / "themes"
BUILTIN_THEMES_DIR = (
    _PACKAGED_THEMES
    if _PACKAGED_THEMES.is_dir()
    else Path(__file__).resolve().parents[2] / "themes"
)
DEFAULT_THEME = "sdtui-dark"
THEME_LIMIT = 256 * 1024  # a theme is a few hundred bytes
_STATE_FILE = "state.json"
_FIELDS = {f.name: f for f in dataclasses.fields(Theme)}
_COLOR_FIELDS = {name for name in _FIELDS if name not in ("name", "dark", "variables", "ansi")} - {
    "luminosity_spread",
    "text_alpha",
}


def user_themes_dir() -> Path:
    return config_dir() / "themes"


def theme_from_toml(path: Path) -> Theme:
    """Read one theme file; ValidationError says what is wrong with it."""
    field = f"theme {path_text(path.name)}"
    try:
        data = tomllib.loads(read_regular_text(path, THEME_LIMIT))
    except NotRegularFileError as exc:
        raise ValidationError(field, str(exc)) from None
    except OSError as exc:
        raise ValidationError(field, f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError(field, "is not UTF-8 text") from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ValidationError(field, f"is not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValidationError(field, f"has unknown keys: {', '.join(unknown)}")
    if "primary" not in data:
        raise ValidationError(field, "needs a primary colour")
    for key, value in data.items():
        if key in _COLOR_FIELDS and not isinstance(value, str):
            raise ValidationError(field, f"{key} must be a colour string")
    if not isinstance(data.get("variables", {}), dict):
        raise ValidationError(field, "[variables] must be a table")
    for key, value in data.get("variables", {}).items():
        if not isinstance(value, str):
            raise ValidationError(field, f"[variables] {key} must be text, got {value!r}")
    for key in ("dark",):
        if key in data and not isinstance(data[key], bool):
            raise ValidationError(field, f"{key} must be true or false")
    for key in ("luminosity_spread", "text_alpha"):
        if key in data and (isinstance(data[key], bool) or not isinstance(data[key], (int, float))):
            raise ValidationError(field, f"{key} must be a number")
    if not isinstance(data["name"], str) or not data["name"].strip():
        raise ValidationError(field, "name must be text")
    theme = Theme(**data)
    try:
        theme.to_color_system()  # parses every colour now, not on first paint
    except Exception as exc:
        raise ValidationError(field, f"has a bad colour: {exc}") from None
    return theme


def css_problem(app: App[Any], theme: Theme) -> str | None:
    """Why the app's CSS cannot be built with `theme` (a variable that breaks it), or None.

    Tried on a copy of the app's stylesheet, so a bad theme is refused before it
    is applied instead of failing the app at its next repaint.
    """
    stylesheet = app.stylesheet.copy()
    try:
        variables = theme.to_color_system().generate()
        stylesheet.set_variables(
            {**app.get_theme_variable_defaults(), **variables, **theme.variables}
        )
        stylesheet.reparse()
    except Exception as exc:  # noqa: BLE001 - Textual reports CSS problems as many types
        text = " ".join(str(exc).split())
        return text[:200] or type(exc).__name__
    return None


def load_themes(folders: list[Path] | None = None) -> tuple[list[Theme], list[str]]:
    """Every theme in the built-in and user folders (later ones win), plus problems found."""
    if folders is None:
        folders = [BUILTIN_THEMES_DIR, user_themes_dir()]
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = theme_from_toml(path)
            except ValidationError as exc:
                problems.append(str(exc))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems


def remembered_theme() -> str | None:
    try:
        data = json.loads(read_regular_text(config_dir() / _STATE_FILE, THEME_LIMIT))
    except (OSError, ValueError, RecursionError):
        return None
    theme = data.get("theme") if isinstance(data, dict) else None
    return theme if isinstance(theme, str) and theme else None


def remember_theme(name: str) -> None:
    """Store the theme in the state file (atomically, keeping other keys)."""
    folder = ensure_private_dir(config_dir())
    path = folder / _STATE_FILE
    try:
        data = json.loads(read_regular_text(path, THEME_LIMIT))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError, RecursionError):
        data = {}
    data["theme"] = name
    fd, tmp = tempfile.mkstemp(prefix=".sdtui-tmp-state-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        log.warning("could not remember the theme in %s", path, exc_info=True)
        Path(tmp).unlink(missing_ok=True)
