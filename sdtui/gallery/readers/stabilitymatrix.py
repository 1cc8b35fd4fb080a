"""Stability Matrix: `parameters-json` (PositivePrompt, NegativePrompt, Seed...),
beside an A1111 `parameters` text and the ComfyUI graph it ran. The JSON is
read first: its text is exact where the tEXt copy has lost its encoding."""

from __future__ import annotations

from typing import Any

from sdtui.gallery.readers.base import ImageMetadata, exact_int, extra_text, finite_float, text

_KNOWN = {"PositivePrompt", "NegativePrompt", "Steps", "Sampler", "CfgScale", "Seed"}
_KNOWN |= {"Width", "Height", "ModelName"}


def read(data: dict[str, Any]) -> ImageMetadata | None:
    if "PositivePrompt" not in data:
        return None
    extras = {
        str(k): extra_text(v)
        for k, v in data.items()
        if k not in _KNOWN and v not in (None, 0, False, "")
    }
    return ImageMetadata(
        source="stabilitymatrix",
        prompt=text(data.get("PositivePrompt")).strip(),
        negative_prompt=text(data.get("NegativePrompt")).strip(),
        steps=exact_int(data.get("Steps")),
        sampler=text(data.get("Sampler")) or None,
        cfg_scale=finite_float(data.get("CfgScale")),
        seed=exact_int(data.get("Seed")),
        width=exact_int(data.get("Width")),
        height=exact_int(data.get("Height")),
        model=text(data.get("ModelName")) or None,
        extras=extras,
    )
