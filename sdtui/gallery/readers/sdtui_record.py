"""sdtui's own `sdtui` chunk: the whole request as JSON, read back losslessly."""

from __future__ import annotations

from sdtui.gallery.readers.base import (
    ImageMetadata,
    exact_int,
    finite_float,
    json_object,
    text,
)


def read(raw: str) -> ImageMetadata | None:
    record = json_object(raw)
    if record is None:
        return None
    request = record.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("prompt"), str):
        return None
    extras = request.get("extras")
    info = {k: v for k, v in record.items() if k != "request"}
    return ImageMetadata(
        source="sdtui",
        prompt=text(request.get("prompt")),
        negative_prompt=text(request.get("negative_prompt")),
        steps=exact_int(request.get("steps")),
        sampler=text(request.get("scheduler")) or None,
        cfg_scale=finite_float(request.get("cfg")),
        seed=exact_int(record.get("seed", request.get("seed"))),
        width=exact_int(request.get("width")),
        height=exact_int(request.get("height")),
        model=text(request.get("model")) or None,
        extras={str(k): str(v) for k, v in extras.items()} if isinstance(extras, dict) else {},
        request_dict=request,
        info=info,
    )
