"""Readers of the settings other tools (and sdtui) store in image files.

One module per tool; `metadata_from_texts` picks the richest record present.
Reading never trusts the file: any image, malformed or hostile, gives either an
`ImageMetadata` or an `ImageReadError` with a one-line reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sdtui.gallery.readers import sdtui_record
from sdtui.gallery.readers.base import (
    PARAMETERS_CHUNK,
    SDTUI_CHUNK,
    SOURCES,
    ImageMetadata,
    ImageReadError,
    json_object,
)
from sdtui.gallery.readers.container import (
    MAX_TEXT_CHARS,
    png_is_complete,
    read_text_chunks,
)
from sdtui.gallery.readers.stealth import read_stealth

__all__ = [
    "MAX_TEXT_CHARS",
    "PARAMETERS_CHUNK",
    "SDTUI_CHUNK",
    "SOURCES",
    "ImageMetadata",
    "ImageReadError",
    "metadata_from_texts",
    "png_is_complete",
    "read_metadata",
    "read_text_chunks",
]

log = logging.getLogger(__name__)


def _read_json_parameters(raw: str) -> ImageMetadata | None:
    """`parameters` that hold JSON: SwarmUI, RuinedFooocus, Fooocus."""
    data = json_object(raw.strip()) if raw.lstrip().startswith("{") else None
    if data is None:
        return None
    from sdtui.gallery.readers import fooocus, ruinedfooocus, swarmui

    if "sui_image_params" in data:
        return swarmui.read(data)
    if ruinedfooocus.is_ruinedfooocus(data):
        return ruinedfooocus.read(data)
    if fooocus.is_fooocus(data) or "prompt" in data:
        return fooocus.read(data)
    return None


def _pick(texts: dict[str, str]) -> ImageMetadata | None:
    if SDTUI_CHUNK in texts:
        meta = sdtui_record.read(texts[SDTUI_CHUNK])
        if meta is not None:
            return meta
    # Other tools' readers load only for their images: saving sdtui's own needs none.
    from sdtui.gallery.readers import a1111, comfyui, invokeai, novelai, stabilitymatrix

    parameters = texts.get(PARAMETERS_CHUNK, "")
    meta = _read_json_parameters(parameters) if parameters else None
    if meta is not None:
        return meta
    if "parameters-json" in texts:
        data = json_object(texts["parameters-json"])
        meta = stabilitymatrix.read(data) if data else None
        if meta is not None:
            return meta
    for key in ("invokeai_metadata", "sd-metadata"):
        if key in texts:
            meta = invokeai.read_metadata_json(texts[key])
            if meta is not None:
                return meta
    if "Dream" in texts:
        meta = invokeai.read_dream(texts["Dream"])
        if meta is not None:
            return meta
    if novelai.is_novelai(texts):
        meta = novelai.read(texts)
        if meta is not None:
            return meta
    if "prompt" in texts or "workflow" in texts:
        meta = comfyui.read(texts.get("prompt", ""), texts.get("workflow", ""))
        if meta is not None:
            return meta
    if parameters.strip():
        return a1111.read(parameters)
    return None


# Characters that end a line for some views (Python's str.split, terminals) but not
# for others: a stray CR, vertical tab, form feed, file/group/record separators, NEL
# and the Unicode line and paragraph separators all become one newline, so every
# view shows them alike (a line break, or a space on one-line views).
_LINE_BREAKS = str.maketrans({ch: "\n" for ch in "\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029"})


def clean_text(value: str) -> str:
    """Other tools' line endings (CRLF, a stray CR...) as plain newlines, ends trimmed."""
    return value.replace("\r\n", "\n").translate(_LINE_BREAKS).strip()


def metadata_from_texts(texts: dict[str, str]) -> ImageMetadata:
    """The settings in an image's text chunks, from whichever tool wrote them."""
    meta = _pick(texts)
    if meta is None:
        return ImageMetadata()
    if meta.source == "sdtui":
        return meta
    return meta.with_changes(
        prompt=clean_text(meta.prompt), negative_prompt=clean_text(meta.negative_prompt)
    )


def read_metadata(path: Path, require_complete: bool = False) -> ImageMetadata:
    """The settings stored in an image file, from whichever tool wrote it.

    Raises ImageReadError for files that are not readable images (and, with
    `require_complete`, for PNGs cut short). Never raises anything else.
    """
    texts, (width, height), fmt = read_text_chunks(path)
    if require_complete and fmt == "PNG" and not png_is_complete(path):
        raise ImageReadError(f"{path}: the PNG is truncated")
    try:
        meta = metadata_from_texts(texts)
        if meta.source == "none" and fmt in ("PNG", "WEBP"):
            hidden = read_stealth(path)
            if hidden:
                meta = metadata_from_texts({PARAMETERS_CHUNK: hidden})
    except Exception as exc:  # noqa: BLE001 - hostile metadata must never crash a reader
        log.warning("%s: unreadable metadata (%s)", path, exc)
        meta = ImageMetadata()
    # The settings' size is what makes the image again (A1111's hires fix upscales
    # after it); the pixel size only fills in when the settings hold none.
    if meta.width is None or meta.height is None:
        meta = meta.with_changes(width=width, height=height)
    return meta
