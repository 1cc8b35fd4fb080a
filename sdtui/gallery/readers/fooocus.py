"""Fooocus's own metadata scheme: a JSON object in `parameters` (PNG) or the
main EXIF UserComment (JPEG, WebP), with `metadata_scheme: fooocus`. Its
A1111 scheme is A1111 text and goes through that reader.

Writer: Fooocus modules/meta_parser.py (FooocusMetadataParser.to_json): the seed
is a string of up to 19 digits, `resolution` is the text of (width, height).
"""

from __future__ import annotations

from typing import Any

from sdtui.gallery.readers.base import (
    ImageMetadata,
    exact_int,
    extra_text,
    finite_float,
    size_pair,
    text,
)
from sdtui.gallery.readers.samplers import comfy_sampler

_KNOWN = {
    "prompt",
    "negative_prompt",
    "steps",
    "sampler",
    "scheduler",
    "guidance_scale",
    "seed",
    "resolution",
    "base_model",
}


def is_fooocus(data: dict[str, Any]) -> bool:
    return "metadata_scheme" in data or text(data.get("version")).startswith("Fooocus")


def read(data: dict[str, Any]) -> ImageMetadata:
    width, height = size_pair(data.get("resolution"))
    sampler = text(data.get("sampler"))
    scheduler = text(data.get("scheduler"))
    extras = {str(k): extra_text(v) for k, v in data.items() if k not in _KNOWN}
    if scheduler:
        extras["Schedule type"] = scheduler
    return ImageMetadata(
        source="fooocus",
        prompt=text(data.get("prompt")),
        negative_prompt=text(data.get("negative_prompt")),
        steps=exact_int(data.get("steps")),
        sampler=comfy_sampler(sampler, scheduler) if sampler else None,
        cfg_scale=finite_float(data.get("guidance_scale")),
        seed=exact_int(data.get("seed")),
        width=width,
        height=height,
        model=text(data.get("base_model")) or None,
        extras=extras,
    )
