"""`sdtui upscale IMAGE`: enlarge a picture with an upscaler model into a new gallery image.

The new image keeps the source's settings (so remix still works) and records
where it came from: the source path and sha256, the upscaler and the scale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sdtui.cli import common
from sdtui.cli.upscalers import add_upscaler_dir_argument
from sdtui.errors import ValidationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="the picture to enlarge")
    parser.add_argument(
        "--upscaler", metavar="NAME", help="upscaler name (see `sdtui upscalers`) or file"
    )
    parser.add_argument(
        "--scale", metavar="N", help="enlarge N times (default: the model's own factor)"
    )
    parser.add_argument(
        "--tile", metavar="PIXELS", default="512", help="tile size, 0 for none (default 512)"
    )
    add_upscaler_dir_argument(parser)
    common.add_gallery_argument(parser)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to run")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        default=None,
        help="allow .pth/.pt pickle upscalers (read as weights only)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _scale(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        scale = float(text)
    except ValueError:
        raise ValidationError("scale", f"must be a number from 1 to 8, got {text!r}") from None
    if not 1 <= scale <= 8:
        raise ValidationError("scale", f"must be from 1 to 8, got {text}")
    return scale


def _tile(text: str) -> int:
    try:
        tile = int(text)
    except ValueError:
        raise ValidationError("tile", f"must be a whole number of pixels, got {text!r}") from None
    if tile != 0 and not 32 <= tile <= 4096:
        raise ValidationError("tile", f"must be 0 (no tiling) or 32 to 4096, got {tile}")
    return tile


def _pick_upscaler(name: str | None, folder: Path) -> Path:
    from sdtui.engine.upscale import find_upscaler, list_upscalers

    if name:
        return find_upscaler(name, folder)
    found = list_upscalers(folder)
    if len(found) == 1:
        return found[0].path
    if not found:
        raise ValidationError(
            "upscaler", f"none in {folder}; put an ESRGAN-family .safetensors file there"
        )
    names = ", ".join(item.name for item in found)
    raise ValidationError("upscaler", f"several in {folder}; pick one with --upscaler ({names})")


def run(args: argparse.Namespace) -> int:
    from sdtui.engine.upscale import output_size, upscaler_dir
    from sdtui.images import open_image

    settings = common.settings_from_args(args)
    source = Path(args.image).expanduser()
    image = open_image(source, "image")
    scale = _scale(args.scale)
    tile = _tile(args.tile)
    folder = upscaler_dir(args.upscaler_dir, settings.extra.get("upscalers"))
    model_path = _pick_upscaler(args.upscaler, folder)
    if scale is not None:
        output_size(image.size, scale)  # too large: refused before the model loads

    from sdtui.engine.device import choose_device
    from sdtui.engine.upscale_job import upscale_into_gallery
    from sdtui.gallery import Gallery

    def on_tile(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\rsdtui: tile {done}/{total}", end="", file=sys.stderr, flush=True)

    device = choose_device(settings.device)
    with Gallery(settings.gallery) as gallery:
        done = upscale_into_gallery(
            source, model_path, gallery, device=device, scale=scale, tile=tile,
            allow_pickle=settings.allow_pickle, on_tile=on_tile,
        )  # fmt: skip
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        line = {
            "path": str(done.entry.path),
            "width": done.size[0],
            "height": done.size[1],
            "seconds": round(done.seconds, 3),
            **done.record,
        }
        print(json.dumps(line, ensure_ascii=False), flush=True)
    else:
        print(done.entry.path, flush=True)
    return 0
