"""InvokeAI, every generation of it.

- 3.x and later: `invokeai_metadata`, a flat JSON object (positive_prompt, seed...).
- 2.x: `sd-metadata`, JSON with an `image` object whose prompt holds the negative
  prompt in [square brackets].
- 1.x and 2.x: `Dream`, the command line that made the image:
  `"prompt [negative]" -s steps -S seed -W width -H height -C cfg -A sampler`.
"""

from __future__ import annotations

import re
import shlex
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

_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
_KNOWN = {"positive_prompt", "negative_prompt", "steps", "scheduler", "cfg_scale", "seed"}
_KNOWN |= {"width", "height", "model"}


def split_bracketed(prompt: str) -> tuple[str, str]:
    """InvokeAI 2's `a cat [blurry, dog]`: the bracketed parts are the negative prompt."""
    negative = ", ".join(p.strip() for p in _BRACKETED.findall(prompt) if p.strip())
    positive = " ".join(_BRACKETED.sub(" ", prompt).split())
    return positive, negative


def read_metadata_json(raw: str) -> ImageMetadata | None:
    data = json_object(raw)
    if data is None:
        return None
    if isinstance(data.get("image"), dict):
        return _read_sd_metadata(data)
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    scheduler = text(data.get("scheduler"))
    extras = {
        str(k): extra_text(v)
        for k, v in data.items()
        if k not in _KNOWN and isinstance(v, (str, int, float)) and not isinstance(v, bool)
    }
    return ImageMetadata(
        source="invokeai",
        prompt=text(data.get("positive_prompt")),
        negative_prompt=text(data.get("negative_prompt")),
        steps=exact_int(data.get("steps")),
        sampler=invoke_sampler(scheduler) if scheduler else None,
        cfg_scale=finite_float(data.get("cfg_scale")),
        seed=exact_int(data.get("seed")),
        width=exact_int(data.get("width")),
        height=exact_int(data.get("height")),
        model=model if isinstance(model, str) else None,
        extras=extras,
    )


def _read_sd_metadata(data: dict[str, Any]) -> ImageMetadata:
    image = data["image"]
    prompt = image.get("prompt")
    if isinstance(prompt, list):  # [{"prompt": ..., "weight": ...}, ...]
        prompt = " ".join(text(p.get("prompt")) for p in prompt if isinstance(p, dict))
    positive, negative = split_bracketed(text(prompt))
    sampler = text(image.get("sampler"))
    extras = {
        str(k): extra_text(v)
        for k, v in image.items()
        if k not in ("prompt", "steps", "cfg_scale", "seed", "width", "height", "sampler")
    }
    for key in ("model_hash", "app_id", "app_version"):
        if isinstance(data.get(key), str):
            extras[key] = data[key]
    return ImageMetadata(
        source="invokeai",
        prompt=positive,
        negative_prompt=negative,
        steps=exact_int(image.get("steps")),
        sampler=invoke_sampler(sampler) if sampler else None,
        cfg_scale=finite_float(image.get("cfg_scale")),
        seed=exact_int(image.get("seed")),
        width=exact_int(image.get("width")),
        height=exact_int(image.get("height")),
        model=text(data.get("model_weights")) or None,
        extras=extras,
    )


# Dream flags (InvokeAI 2 ldm/invoke/args.py): short flag -> our field.
_DREAM_FLAGS = {"-s": "steps", "-S": "seed", "-W": "width", "-H": "height", "-C": "cfg"}
_DREAM_FLAGS |= {"-A": "sampler"}


def read_dream(raw: str) -> ImageMetadata | None:
    try:
        words = shlex.split(raw)
    except ValueError:
        return None
    if not words:
        return None
    positive, negative = split_bracketed(words[0])
    values: dict[str, str] = {}
    extras: dict[str, str] = {}
    i = 1
    while i < len(words):
        word = words[i]
        if word.startswith("-") and i + 1 < len(words) and not words[i + 1].startswith("-"):
            name = _DREAM_FLAGS.get(word)
            if name:
                values[name] = words[i + 1]
            else:
                extras[word.lstrip("-")] = words[i + 1]
            i += 2
        else:
            i += 1
    sampler = values.get("sampler", "")
    return ImageMetadata(
        source="invokeai",
        prompt=positive,
        negative_prompt=negative,
        steps=exact_int(values.get("steps")),
        sampler=invoke_sampler(sampler) if sampler else None,
        cfg_scale=finite_float(values.get("cfg")),
        seed=exact_int(values.get("seed")),
        width=exact_int(values.get("width")),
        height=exact_int(values.get("height")),
        extras=extras,
    )
