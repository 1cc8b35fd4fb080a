"""Settings stored in image files: what sdtui writes, and (re-exported from
`sdtui.gallery.readers`) what it reads from its own and other tools' images.

We write two PNG text chunks: `parameters` (the A1111 text that other tools'
PNG-info readers show) and `sdtui` (JSON with the whole request, lossless).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sdtui import __version__
from sdtui.gallery.readers import (
    MAX_TEXT_CHARS,
    PARAMETERS_CHUNK,
    SDTUI_CHUNK,
    SOURCES,
    ImageMetadata,
    ImageReadError,
    metadata_from_texts,
    png_is_complete,
    read_metadata,
    read_text_chunks,
)
from sdtui.params import format_parameters

if TYPE_CHECKING:
    from PIL.PngImagePlugin import PngInfo

    from sdtui.results import GeneratedImage, GenerationResult

__all__ = [
    "FORMAT_VERSION",
    "MAX_TEXT_CHARS",
    "PARAMETERS_CHUNK",
    "SDTUI_CHUNK",
    "SOURCES",
    "ImageMetadata",
    "ImageReadError",
    "metadata_from_texts",
    "png_info",
    "png_is_complete",
    "read_metadata",
    "read_text_chunks",
    "sdtui_record",
]

FORMAT_VERSION = 1

# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def sdtui_record(
    generated: GeneratedImage, result: GenerationResult, created: datetime | None = None
) -> dict[str, Any]:
    """The JSON stored in our `sdtui` chunk for one image of a result."""
    created = created or datetime.now(timezone.utc)
    info = json.loads(json.dumps(result.info, default=str)) if result.info else {}
    return {
        "format": FORMAT_VERSION,
        "sdtui_version": __version__,
        "request": generated.image_request().to_dict(),
        "seed": generated.seed,
        "index": generated.index,
        "batch_count": generated.request.count,
        "model_id": result.model_id,
        "family": info.get("family", ""),
        "device": result.device,
        "dtype": result.dtype,
        "load_seconds": round(result.load_seconds, 3),
        "generate_seconds": round(result.generate_seconds, 3),
        "created": created.isoformat(timespec="seconds"),
        "info": info,
    }


def png_info(
    generated: GeneratedImage, result: GenerationResult, created: datetime | None = None
) -> PngInfo:
    """The text chunks of one saved image: `parameters` (A1111) and `sdtui` (JSON)."""
    from PIL.PngImagePlugin import PngInfo

    pnginfo = PngInfo()
    # add_text switches to iTXt (UTF-8) itself when the text is not Latin-1, as A1111 does.
    pnginfo.add_text(PARAMETERS_CHUNK, format_parameters(generated.request, generated.seed))
    record = json.dumps(sdtui_record(generated, result, created), ensure_ascii=False)
    pnginfo.add_itxt(SDTUI_CHUNK, record, zip=len(record) > 4096)
    return pnginfo
