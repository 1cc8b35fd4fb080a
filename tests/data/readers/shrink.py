"""Make a small copy of a generator's image for the reader corpus.

The pixels are replaced by a flat grey image of the same size; every metadata
chunk (PNG text chunks, JPEG APPn/COM segments, WebP EXIF/XMP chunks) is kept
byte for byte. Run: python shrink.py SOURCE DEST
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks.append((kind, data[pos : pos + 12 + length]))
        pos += 12 + length
    return chunks


def shrink_png(data: bytes) -> bytes:
    chunks = _png_chunks(data)
    ihdr = chunks[0][1][8:21]
    width, height, depth, colour = struct.unpack(">IIBB", ihdr[:10])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    row = b"\x00" + bytes([128]) * ((width * channels * depth + 7) // 8)
    body = zlib.compress(row * height, 9)
    idat = struct.pack(">I", len(body)) + b"IDAT" + body
    idat += struct.pack(">I", zlib.crc32(b"IDAT" + body) & 0xFFFFFFFF)
    out, wrote_idat = [data[:8]], False
    for kind, raw in chunks:
        if kind == b"IDAT":
            if not wrote_idat:
                out.append(idat)
                wrote_idat = True
            continue
        out.append(raw)
    return b"".join(out)


def shrink_jpeg(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        size = im.size
    flat = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(flat, "JPEG", quality=10)
    # Keep the source's APPn and COM segments as they are, before the new image's tables.
    kept, pos = [], 2
    while pos < len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: no more header segments
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xE1 <= marker <= 0xEF or marker == 0xFE:
            kept.append(data[pos : pos + 2 + length])
        pos += 2 + length
    new = flat.getvalue()
    pos = 2
    while new[pos + 1] in (0xE0,):  # keep the new JFIF header only
        (length,) = struct.unpack(">H", new[pos + 2 : pos + 4])
        pos += 2 + length
    return new[:pos] + b"".join(kept) + new[pos:]


def shrink_webp(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        size = im.size
    pos, extra = 12, {}
    while pos < len(data):
        kind = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if kind in (b"EXIF", b"XMP "):
            extra[kind] = data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)
    flat = io.BytesIO()
    options = {}
    if b"EXIF" in extra:
        options["exif"] = extra[b"EXIF"]
    if b"XMP " in extra:
        options["xmp"] = extra[b"XMP "]
    Image.new("RGB", size, (128, 128, 128)).save(flat, "WEBP", quality=10, **options)
    return flat.getvalue()


def main() -> None:
    source, dest = Path(sys.argv[1]), Path(sys.argv[2])
    data = source.read_bytes()
    if data.startswith(b"\x89PNG"):
        out = shrink_png(data)
    elif data.startswith(b"\xff\xd8"):
        out = shrink_jpeg(data)
    elif data[8:12] == b"WEBP":
        out = shrink_webp(data)
    else:
        raise SystemExit(f"{source}: not a PNG, JPEG or WebP file")
    dest.write_bytes(out)
    print(f"{dest}: {len(data)} -> {len(out)} bytes")


if __name__ == "__main__":
    main()
