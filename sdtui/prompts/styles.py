"""Prompt styles: a template around the prompt, a negative prompt, optional settings.

Built-in styles ship in `data/styles.toml`; the user's own are `*.toml` files in
`<config folder>/styles/` (same format; a user style replaces a built-in of the
same name). Several styles nest: each template wraps the result of the last.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.config import config_dir
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.prompts.datafiles import check_name, load_catalog

PLACEHOLDER = "{prompt}"
STYLE_SETTINGS = ("steps", "cfg", "width", "height", "scheduler")
_TEXT_KEYS = ("name", "template", "negative", "description")
# Metadata keys of a styled request.
STYLES_KEY = "Styles"
BASE_PROMPT_KEY = "Style base prompt"
BASE_NEGATIVE_KEY = "Style base negative prompt"


@dataclass(frozen=True)
class Style:
    name: str
    template: str
    negative: str = ""
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = "built-in"

    def apply(self, prompt: str) -> str:
        return self.template.replace(PLACEHOLDER, prompt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "template": self.template,
            "negative": self.negative,
            "description": self.description,
            "settings": dict(self.settings),
            "source": self.source,
        }


@dataclass(frozen=True)
class StyleCatalog:
    """Every style by name, and the problems met while reading the user's files."""

    styles: dict[str, Style]
    problems: list[str]

    def get(self, name: str) -> Style:
        style = self.styles.get(name) or self.styles.get(name.strip().lower())
        if style is None:
            known = ", ".join(sorted(self.styles)) or "none"
            raise ValidationError("style", f"no style named {name!r} (known: {known})")
        return style


def styles_dir() -> Path:
    return config_dir() / "styles"


def style_from_dict(data: dict[str, Any], source: str) -> Style:
    """Build and check one style; ValidationError says what is wrong with it."""
    for key in _TEXT_KEYS:
        if key in data and not isinstance(data[key], str):
            raise ValidationError("style", f"{key} must be text")
    name = check_name("style", data.get("name", ""))
    template = data.get("template", "")
    if PLACEHOLDER not in template:
        raise ValidationError("style", f"{name}: the template must contain {PLACEHOLDER}")
    unknown = sorted(set(data) - set(_TEXT_KEYS) - set(STYLE_SETTINGS))
    if unknown:
        raise ValidationError(
            "style",
            f"{name}: unknown keys {', '.join(unknown)} "
            f"(allowed: {', '.join(_TEXT_KEYS + STYLE_SETTINGS)})",
        )
    settings = {k: data[k] for k in STYLE_SETTINGS if k in data}
    if settings:  # validated the same way as a request, so a bad value is caught now
        checked = GenerationRequest("check", **settings)
        settings = {k: getattr(checked, k) for k in settings}
    return Style(
        name=name,
        template=template,
        negative=data.get("negative", ""),
        description=data.get("description", ""),
        settings=settings,
        source=source,
    )


def load_styles(folder: Path | None = None) -> StyleCatalog:
    """Built-in styles, then the user's (which win on equal names)."""
    styles, problems = load_catalog(
        "styles.toml", "style", styles_dir() if folder is None else folder, style_from_dict
    )
    return StyleCatalog(styles, problems)


def apply_styles(prompt: str, negative_prompt: str, styles: Iterable[Style]) -> tuple[str, str]:
    """The prompt wrapped by each template in turn, and the negatives joined."""
    negatives = [negative_prompt.strip()] if negative_prompt.strip() else []
    for style in styles:
        prompt = style.apply(prompt)
        if style.negative.strip() and style.negative.strip() not in negatives:
            negatives.append(style.negative.strip())
    return prompt, ", ".join(negatives)


def style_request(
    request: GenerationRequest,
    names: Iterable[str],
    catalog: StyleCatalog | None = None,
    apply_settings: bool = True,
) -> GenerationRequest:
    """`request` with the named styles applied and recorded in its extras.

    The prompt becomes the final text (so a remix reproduces the image); the
    extras keep the style names and the prompt as written before styling.
    """
    names = [n for n in names if n.strip()]
    if not names:
        return request
    catalog = load_styles() if catalog is None else catalog
    chosen = [catalog.get(name) for name in names]
    prompt, negative = apply_styles(request.prompt, request.negative_prompt, chosen)
    changes: dict[str, Any] = {}
    if apply_settings:
        for style in chosen:
            changes.update(style.settings)
    extras = dict(request.extras)
    extras.setdefault(BASE_PROMPT_KEY, request.prompt)
    if request.negative_prompt:
        extras.setdefault(BASE_NEGATIVE_KEY, request.negative_prompt)
    extras[STYLES_KEY] = ", ".join(s.name for s in chosen)
    return request.replace(
        prompt=prompt, negative_prompt=negative, extras=tuple(extras.items()), **changes
    )
