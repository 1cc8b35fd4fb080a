"""`sdtui loras`: the LoRA files in the LoRA folder, with their family and trigger words."""

from __future__ import annotations

import argparse
import json

from sdtui.cli import common
from sdtui.display import json_for_terminal, printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_listing_arguments(parser)


def add_listing_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_addon_arguments(parser)
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line (name, path, family, ...)"
    )


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def list_files(args: argparse.Namespace, kind: str) -> int:
    from sdtui.addons import family_name, scan_folder

    settings = common.settings_from_args(args)
    folder = settings.loras if kind == "lora" else settings.embeddings
    files = scan_folder(folder, kind)
    if args.json:
        for item in files:
            print(json_for_terminal(json.dumps(item.to_json(), ensure_ascii=False)), flush=True)
        return 0
    if not files:
        print(f"no {kind} files in {folder}")
        return 0
    for item in files:
        family = family_name(item.family) if item.family else "family unknown"
        parts = [item.name, family, _size(item.size)]
        if item.error:
            parts.append(item.error)
        if item.triggers:
            parts.append("triggers: " + ", ".join(item.triggers))
        print(printable("  ".join(parts)))
    return 0


def run(args: argparse.Namespace) -> int:
    return list_files(args, "lora")
