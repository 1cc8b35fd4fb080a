"""A1111 "stealth" metadata: the `parameters` text hidden in the lowest bit of the
alpha channel (`stealth_png…`) or of each colour channel (`stealth_rgb…`), read
column by column, as plain UTF-8 (`…info`) or gzip (`…comp`).

Only lossless images with no text chunks are tried, and only their first
column is needed to know: other files never pay for decoding pixels.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

_SIGNATURES = {
    b"stealth_pnginfo": ("alpha", False),
    b"stealth_pngcomp": ("alpha", True),
    b"stealth_rgbinfo": ("rgb", False),
    b"stealth_rgbcomp": ("rgb", True),
}
_SIGNATURE_BYTES = 15
MAX_PIXELS = 40_000_000
MAX_TEXT_BYTES = 2_000_000


def read_stealth(path: Path) -> str | None:
    """The hidden `parameters` text of an image, or None when there is none."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format not in ("PNG", "WEBP") or im.width * im.height > MAX_PIXELS:
                return None
            if im.mode not in ("RGB", "RGBA"):
                return None
            pixels = np.asarray(im)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None
    # Column by column: transpose to (width, height, channels).
    columns = pixels.transpose(1, 0, 2)
    for layout in ("alpha", "rgb"):
        if layout == "alpha":
            if pixels.shape[2] < 4:
                continue
            bits = columns[:, :, 3] & 1
        else:
            bits = columns[:, :, :3] & 1
        stream = np.packbits(bits.reshape(-1)).tobytes()
        signature = stream[:_SIGNATURE_BYTES]
        if signature not in _SIGNATURES or _SIGNATURES[signature][0] != layout:
            continue
        compressed = _SIGNATURES[signature][1]
        length_bits = int.from_bytes(stream[_SIGNATURE_BYTES : _SIGNATURE_BYTES + 4], "big")
        start = _SIGNATURE_BYTES + 4
        body = stream[start : start + min(length_bits // 8, MAX_TEXT_BYTES)]
        try:
            if compressed:
                body = gzip.GzipFile(fileobj=__import__("io").BytesIO(body)).read(MAX_TEXT_BYTES)
            return body.decode("utf-8", "replace").strip("\0") or None
        except (OSError, EOFError, zlib.error):
            return None
    return None
