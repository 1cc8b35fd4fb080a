"""Getting the metadata text out of PNG, JPEG and WebP files, without their pixels.

PNG text chunks come as they are. JPEG and WebP keep text in EXIF: A1111,
Forge, SD.Next and SwarmUI write the UserComment of the EXIF block (usually in
its `UNICODE` encoding, either byte order); Fooocus and ComfyUI savers write
UserComment (or ImageDescription, Make, Model) in the main block; NovelAI
writes a JSON copy of its PNG chunks. JPEG comment segments are read too.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from sdtui.gallery.readers.base import (
    PARAMETERS_CHUNK,
    SDTUI_CHUNK,
    ImageReadError,
    json_object,
)
from sdtui.regular_files import NotRegularFileError, open_regular

log = logging.getLogger(__name__)

# Text chunks longer than this are ignored: a ComfyUI workflow is a few hundred
# kilobytes at most, and parsing megabytes of JSON from a stranger's file is a
# cheap way to stall the gallery.
MAX_TEXT_CHARS = 2_000_000
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_USER_COMMENT = 0x9286
_EXIF_IFD = 0x8769
# Main-block tags that tools use for text: ImageDescription, Make, Model, Software.
_TEXT_TAGS = (0x010E, 0x010F, 0x0110)


def repair_mojibake(value: str) -> str:
    """UTF-8 bytes that a tool wrote into a Latin-1 field (PNG tEXt, EXIF ASCII),
    read back as Latin-1 (`#ãã¹ã`), decoded as the UTF-8 they were."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def decode_user_comment(value: Any) -> str:
    """EXIF UserComment: an 8-byte encoding name, then the text (or a plain str)."""
    if isinstance(value, str):
        return repair_mojibake(value).strip("\0")
    if not isinstance(value, bytes):
        return ""
    head, body = value[:8], value[8:]
    if head == b"UNICODE\0":
        # Either byte order occurs; ASCII-heavy text has its zero bytes on one side.
        odd_zeros = body[1::2].count(0)
        even_zeros = body[0::2].count(0)
        text = body.decode("utf-16-le" if odd_zeros >= even_zeros else "utf-16-be", "replace")
    elif head in (b"ASCII\0\0\0", b"\0" * 8):
        text = body.decode("utf-8", "replace")
    else:
        text = value.decode("utf-8", "replace")
    return text.strip("\0")


def _exif_texts(im: Any) -> dict[str, str]:
    """The texts that generators store in a JPEG's or WebP's EXIF."""
    try:
        exif = im.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # noqa: BLE001 - any damaged EXIF just means "no metadata"
        return {}
    texts: dict[str, str] = {}
    for value in (sub.get(_USER_COMMENT), exif.get(_USER_COMMENT)):
        text = decode_user_comment(value).strip()
        if text:
            for key, found in _texts_from_comment(text).items():
                texts.setdefault(key, found)
    for tag in _TEXT_TAGS:
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str) or not value.strip("\0 "):
            continue
        comment = _texts_from_comment(repair_mojibake(value.strip("\0 ")))
        if tag == 0x010E and PARAMETERS_CHUNK in comment:  # a plain description
            comment = {"Description": comment[PARAMETERS_CHUNK]}
        for key, item in comment.items():
            if key != PARAMETERS_CHUNK or tag == 0x010E:
                texts.setdefault(key, item)
    return texts


def _texts_from_comment(text: str) -> dict[str, str]:
    """One EXIF or JPEG comment text as the PNG chunks it stands for."""
    # ComfyUI's own WebP writer: `prompt:{...}` and `workflow:{...}`.
    for key in ("prompt", "workflow"):
        if text.startswith(key + ":{"):
            return {key: text[len(key) + 1 :]}
    if text.startswith("{"):
        data = json_object(text)
        # A JSON copy of the PNG chunks (NovelAI, ComfyUI image savers).
        if data is not None and ("Comment" in data or isinstance(data.get("prompt"), dict)):
            return {
                str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                for k, v in data.items()
            }
    return {PARAMETERS_CHUNK: text}


def read_text_chunks(path: Path) -> tuple[dict[str, str], tuple[int, int], str]:
    """The text chunks, size and format of an image, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(path) as fh, Image.open(fh) as im:
                info = dict(im.info)
                size = im.size
                fmt = im.format or ""
                extra: dict[str, str] = {}
                if fmt in ("JPEG", "WEBP", "MPO"):
                    extra = _exif_texts(im)
                    comment = info.pop("comment", None)
                    if isinstance(comment, bytes) and comment.strip():
                        text = comment.decode("utf-8", "replace").strip("\0")
                        for key, found in _texts_from_comment(text).items():
                            extra.setdefault(key, found)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except NotRegularFileError as exc:
        raise ImageReadError(f"{path}: {exc}") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(
            f"{path}: image is too large to open safely", "over Pillow's MAX_IMAGE_PIXELS"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports damaged chunks and oversized text as any of these.
        raise ImageReadError(f"{path}: damaged or unreadable image ({exc})") from None
    texts: dict[str, str] = {}
    for key, value in [*info.items(), *extra.items()]:
        if not isinstance(key, str) or not isinstance(value, str):
            continue  # gamma, dpi, icc profiles, raw exif, ...
        if len(value) > MAX_TEXT_CHARS:
            log.warning("%s: ignoring the %r text chunk (%d characters)", path, key, len(value))
            continue
        # Our own chunk is written as UTF-8 iTXt: exact, never "repaired".
        texts.setdefault(key, value if key == SDTUI_CHUNK else repair_mojibake(value))
    return texts, size, fmt


def png_is_complete(path: Path) -> bool:
    """True when a PNG ends with its IEND chunk (a download or copy cut short does not)."""
    try:
        with open_regular(path) as fh:
            fh.seek(0, 2)
            if fh.tell() < len(_PNG_END) + 8:
                return False
            fh.seek(-len(_PNG_END), 2)
            return fh.read() == _PNG_END
    except OSError:
        return False
