"""Width x height presets: the model's native size, then portrait and landscape."""

from __future__ import annotations

from sdtui.models import resolve_model_name
from sdtui.tui.model_defaults import loaded_presets

# Shapes beside the square one, as (width, height) for a native 512 model.
_SHAPES_SD = ((512, 512), (512, 768), (768, 512), (448, 832), (832, 448))
# SDXL's trained buckets around one megapixel.
_SHAPES_XL = ((1024, 1024), (832, 1216), (1216, 832), (768, 1344), (1344, 768))


def native_size(model: str) -> tuple[int, int]:
    """The size the model was trained at; 512x512 when the model is not in the table."""
    entry = resolve_model_name(model).entry
    return entry.native_size if entry else (512, 512)


def size_presets(model: str) -> list[tuple[int, int]]:
    """Square native size first, then portrait/landscape shapes of about the same area.

    Once `model` is loaded, its family's presets (sdtui.tui.model_defaults).
    """
    loaded = loaded_presets(model)
    if loaded:
        return list(loaded)
    entry = resolve_model_name(model).entry
    if entry and entry.family == "sdxl":
        return list(_SHAPES_XL)
    width, _ = native_size(model)
    scale = width / 512
    presets: list[tuple[int, int]] = []
    for w, h in _SHAPES_SD:
        size = (_round8(w * scale), _round8(h * scale))
        if size not in presets:
            presets.append(size)
    return presets


def next_preset(model: str, current: tuple[int, int]) -> tuple[int, int]:
    """The preset after `current` (the first one when `current` is not a preset)."""
    presets = size_presets(model)
    try:
        return presets[(presets.index(current) + 1) % len(presets)]
    except ValueError:
        return presets[0]


def shape_name(width: int, height: int) -> str:
    if width == height:
        return "square"
    return "portrait" if height > width else "landscape"


def _round8(value: float) -> int:
    return max(64, int(round(value / 8)) * 8)
