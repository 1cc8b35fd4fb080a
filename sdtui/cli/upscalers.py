"""`sdtui upscalers`: the upscaler models in the upscaler folder."""

from __future__ import annotations

import argparse
import json
import sys

from sdtui.cli import common
from sdtui.display import printable


def add_upscaler_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--upscaler-dir",
        metavar="DIR",
        help="folder of upscaler models (default: config `upscalers`, SDTUI_UPSCALERS, "
        "or upscalers/ in sdtui's data folder)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_upscaler_dir_argument(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    from sdtui.engine.upscale import list_upscalers, upscaler_dir

    settings = common.settings_from_args(args)
    folder = upscaler_dir(args.upscaler_dir, settings.extra.get("upscalers"))
    found = list_upscalers(folder)
    if args.json:
        print(json.dumps([item.to_json_dict() for item in found], ensure_ascii=False))
        return 0
    if not found:
        print(
            f"sdtui: no upscalers in {folder}; put ESRGAN-family .safetensors (or .pth) there",
            file=sys.stderr,
        )
        return 0
    width = max(len(item.name) for item in found)
    for item in found:
        kind = "pickle, needs --allow-pickle" if item.pickle else "safetensors"
        size = f"{item.size_bytes / 1e6:.1f} MB"
        print(printable(f"{item.name:<{width}}  {size:>9}  {kind}"))
    return 0
