"""A1111 "stealth" metadata: the `parameters` text hidden in the lowest bit of the
alpha channel (`stealth_png…`) or of each colour channel (`stealth_rgb…`), read
column by column, as plain UTF-8 (`…info`) or gzip (`…comp`).

Only lossless images with no text chunks at all are tried (the only ones that
pay for decoding pixels); Pillow does the work, no array library is needed.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

from sdtui.regular_files import open_regular

_SIGNATURES = {
    b"stealth_pnginfo": ("alpha", False),
    b"stealth_pngcomp": ("alpha", True),
    b"stealth_rgbinfo": ("rgb", False),
    b"stealth_rgbcomp": ("rgb", True),
}
_HEADER_BITS = 15 * 8
_LENGTH_BITS = 32
MAX_PIXELS = 40_000_000
MAX_TEXT_BYTES = 2_000_000
# Each byte of pixel data -> the ASCII digit of its lowest bit.
_LOW_BIT = bytes(48 + (value & 1) for value in range(256))


def _packed(bits: bytes) -> bytes:
    """ASCII '0'/'1' digits, most significant first, as bytes (whole bytes only)."""
    usable = len(bits) // 8 * 8
    return int(bits[:usable], 2).to_bytes(usable // 8, "big") if usable else b""


def _decode(bits: bytes, layout: str) -> str | None:
    signature = _packed(bits[:_HEADER_BITS])
    kind = _SIGNATURES.get(signature)
    if kind is None or kind[0] != layout:
        return None
    length_bits = bits[_HEADER_BITS : _HEADER_BITS + _LENGTH_BITS]
    if len(length_bits) < _LENGTH_BITS:
        return None
    length = min(int(length_bits, 2), MAX_TEXT_BYTES * 8)
    start = _HEADER_BITS + _LENGTH_BITS
    body = _packed(bits[start : start + length])
    try:
        if kind[1]:
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(MAX_TEXT_BYTES)
    except (OSError, EOFError, zlib.error):
        return None
    return body.decode("utf-8", "replace").strip("\0") or None


def read_stealth(path: Path) -> str | None:
    """The hidden `parameters` text of an image, or None when there is none."""
    from PIL import Image

    try:
        with open_regular(path) as fh, Image.open(fh) as im:
            if im.format not in ("PNG", "WEBP") or im.width * im.height > MAX_PIXELS:
                return None
            if im.mode not in ("RGB", "RGBA"):
                return None
            # Transposed, each row is a column of the image: row-major bytes are
            # the pixels in the column-by-column order the writer used.
            columns = im.transpose(Image.Transpose.TRANSPOSE)
            if im.mode == "RGBA":
                found = _decode(columns.getchannel("A").tobytes().translate(_LOW_BIT), "alpha")
                if found:
                    return found
            return _decode(columns.convert("RGB").tobytes().translate(_LOW_BIT), "rgb")
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None
