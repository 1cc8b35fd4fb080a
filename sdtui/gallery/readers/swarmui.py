"""SwarmUI: `{"sui_image_params": {...}, "sui_extra_data": {...}}` in `parameters`
(PNG) or EXIF UserComment (JPEG, WebP). Keys are SwarmUI's parameter ids
(docs/Image Metadata Format.md in SwarmUI): prompt, negativeprompt, seed,
steps, cfgscale, width, height, sampler, scheduler, model."""

from __future__ import annotations

from typing import Any

from sdtui.gallery.readers.base import ImageMetadata, exact_int, extra_text, finite_float, text
from sdtui.gallery.readers.samplers import comfy_sampler

_KNOWN = {"prompt", "negativeprompt", "seed", "steps", "cfgscale", "width", "height"}
_KNOWN |= {"sampler", "scheduler", "model"}


def read(data: dict[str, Any]) -> ImageMetadata | None:
    params = data.get("sui_image_params")
    if not isinstance(params, dict):
        return None
    sampler = text(params.get("sampler"))
    scheduler = text(params.get("scheduler"))
    extras = {str(k): extra_text(v) for k, v in params.items() if k not in _KNOWN}
    if scheduler:
        extras["Schedule type"] = scheduler
    return ImageMetadata(
        source="swarmui",
        prompt=text(params.get("prompt")),
        negative_prompt=text(params.get("negativeprompt")),
        steps=exact_int(params.get("steps")),
        sampler=comfy_sampler(sampler, scheduler) if sampler else None,
        cfg_scale=finite_float(params.get("cfgscale")),
        seed=exact_int(params.get("seed")),
        width=exact_int(params.get("width")),
        height=exact_int(params.get("height")),
        model=text(params.get("model")) or None,
        extras=extras,
    )
