"""Presets: named sets of generation settings ("fast-draft", "final", your own).

Built-ins ship in `data/presets.toml`; `save_preset` writes the current settings
to `<config folder>/presets/<name>.toml`, never over an existing file unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.config import config_dir
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.prompts.datafiles import check_name, load_catalog, write_entry

PRESET_SETTINGS = (
    "model",
    "scheduler",
    "steps",
    "cfg",
    "width",
    "height",
    "count",
    "negative_prompt",
)


@dataclass(frozen=True)
class Preset:
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "built-in"

    def apply(self, request: GenerationRequest) -> GenerationRequest:
        return request.replace(**self.settings)


def presets_dir() -> Path:
    return config_dir() / "presets"


def preset_from_dict(data: dict[str, Any], source: str) -> Preset:
    name = check_name("preset", data.get("name", ""))
    unknown = sorted(set(data) - {"name", "description"} - set(PRESET_SETTINGS))
    if unknown:
        raise ValidationError("preset", f"{name}: unknown keys {', '.join(unknown)}")
    settings = {k: data[k] for k in PRESET_SETTINGS if k in data}
    checked = GenerationRequest("check", **settings)  # refuses bad values with the field name
    settings = {k: getattr(checked, k) for k in settings}
    return Preset(name, settings, str(data.get("description", "")), source)


def load_presets(folder: Path | None = None) -> tuple[dict[str, Preset], list[str]]:
    """Every preset by name (the user's win on equal names), and the problems met."""
    return load_catalog(
        "presets.toml", "preset", presets_dir() if folder is None else folder, preset_from_dict
    )


def load_preset(name: str) -> Preset:
    presets, _problems = load_presets()
    if name not in presets:
        known = ", ".join(sorted(presets)) or "none"
        raise ValidationError("preset", f"no preset named {name!r} (known: {known})")
    return presets[name]


def save_preset(
    name: str,
    request: GenerationRequest,
    description: str = "",
    overwrite: bool = False,
    folder: Path | None = None,
) -> Path:
    """Save the settings of `request` (not its prompt or seed) as preset `name`."""
    name = check_name("preset", name)
    values: dict[str, Any] = {"name": name}
    if description:
        values["description"] = description
    for key in PRESET_SETTINGS:
        value = getattr(request, key)
        if key == "negative_prompt" and not value:
            continue  # an empty negative prompt would wipe the user's own on load
        values[key] = value
    folder = presets_dir() if folder is None else folder
    return write_entry(folder / f"{name}.toml", "preset", values, overwrite)
