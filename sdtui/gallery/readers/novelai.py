"""NovelAI: `Description` (the prompt), `Software: NovelAI`, `Source` (the model
and its hash) and `Comment`, a JSON object with seed, steps, scale, sampler,
`uc` (the negative prompt) and, from V4, `v4_prompt` / `v4_negative_prompt`."""

from __future__ import annotations

from typing import Any

from sdtui.gallery.readers.base import (
    ImageMetadata,
    exact_int,
    extra_text,
    finite_float,
    json_object,
    text,
)
from sdtui.gallery.readers.samplers import invoke_sampler

_KNOWN = {"prompt", "uc", "steps", "scale", "seed", "sampler", "width", "height"}
_KNOWN |= {"v4_prompt", "v4_negative_prompt"}


def is_novelai(texts: dict[str, str]) -> bool:
    return texts.get("Software") == "NovelAI" or (
        "Comment" in texts and '"uc"' in texts["Comment"] or "v4_prompt" in texts.get("Comment", "")
    )


def _caption(value: Any) -> str:
    caption = value.get("caption") if isinstance(value, dict) else None
    return text(caption.get("base_caption")) if isinstance(caption, dict) else ""


def read(texts: dict[str, str]) -> ImageMetadata | None:
    data = json_object(texts.get("Comment", "")) or {}
    prompt = (
        text(data.get("prompt")) or texts.get("Description", "") or _caption(data.get("v4_prompt"))
    )
    negative = text(data.get("uc")) or _caption(data.get("v4_negative_prompt"))
    sampler = text(data.get("sampler"))
    name = invoke_sampler(sampler) if sampler else None  # noise_schedule stays an extra
    extras = {
        str(k): extra_text(v)
        for k, v in data.items()
        if k not in _KNOWN and isinstance(v, (str, int, float)) and not isinstance(v, bool)
    }
    source = texts.get("Source", "")
    return ImageMetadata(
        source="novelai",
        prompt=prompt,
        negative_prompt=negative,
        steps=exact_int(data.get("steps")),
        sampler=name,
        cfg_scale=finite_float(data.get("scale")),
        seed=exact_int(data.get("seed")),
        width=exact_int(data.get("width")),
        height=exact_int(data.get("height")),
        model=source or None,
        extras=extras,
    )
