"""RuinedFooocus: a JSON object in `parameters` with `"software": "RuinedFooocus"`
and capitalised `Prompt` / `Negative` keys (writer: RuinedFooocus modules/imagebrowser
and shared metadata code; the sample's own reader test in sd-metadata)."""

from __future__ import annotations

from typing import Any

from sdtui.gallery.readers.base import ImageMetadata, exact_int, extra_text, finite_float, text
from sdtui.gallery.readers.samplers import comfy_sampler

_KNOWN = {"Prompt", "Negative", "steps", "cfg", "width", "height", "seed"}
_KNOWN |= {"sampler_name", "scheduler", "base_model_name"}


def is_ruinedfooocus(data: dict[str, Any]) -> bool:
    return data.get("software") == "RuinedFooocus"


def read(data: dict[str, Any]) -> ImageMetadata:
    sampler = text(data.get("sampler_name"))
    scheduler = text(data.get("scheduler"))
    extras = {str(k): extra_text(v) for k, v in data.items() if k not in _KNOWN}
    if scheduler:
        extras["Schedule type"] = scheduler
    return ImageMetadata(
        source="ruinedfooocus",
        prompt=text(data.get("Prompt")),
        negative_prompt=text(data.get("Negative")),
        steps=exact_int(data.get("steps")),
        sampler=comfy_sampler(sampler, scheduler) if sampler else None,
        cfg_scale=finite_float(data.get("cfg")),
        seed=exact_int(data.get("seed")),
        width=exact_int(data.get("width")),
        height=exact_int(data.get("height")),
        model=text(data.get("base_model_name")) or None,
        extras=extras,
    )
