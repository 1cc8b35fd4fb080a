"""Options shared by the app and the subcommands, and turning them into Settings."""

from __future__ import annotations

import argparse
import os

from sdtui.config import DEVICES, DTYPES, RENDERERS, Settings, load_settings
from sdtui.display import path_text
from sdtui.errors import ValidationError


def whole_number(field: str, text: str | int, lo: int, hi: int) -> int:
    """`text` as a whole number from `lo` to `hi`; ValidationError (exit 2) otherwise,
    with a short message: never echoing a 5,000-digit number, never an OverflowError later."""
    digits = str(text).strip()
    body = digits[1:] if digits[:1] in ("+", "-") else digits
    if not (body.isascii() and body.isdecimal()) or len(body) > len(str(hi)) + 1:
        shown = digits if len(digits) <= 20 else f"a {len(digits)}-character value"
        raise ValidationError(field, f"must be a whole number from {lo} to {hi}, got {shown}")
    value = int(digits)
    if not lo <= value <= hi:
        raise ValidationError(field, f"must be from {lo} to {hi}, got {value}")
    return value


def add_gallery_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gallery",
        metavar="DIR",
        help="gallery folder (default: config, SDTUI_GALLERY, or ~/Pictures/sdtui)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", metavar="NAME|ID|PATH", help="short name, hub id, folder or .safetensors file"
    )
    parser.add_argument("--device", choices=DEVICES, help="where to run (default: auto)")
    parser.add_argument("--dtype", choices=DTYPES, help="weights precision (default: auto)")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        default=None,
        help="allow loading .ckpt/.pt pickle checkpoints, which can run arbitrary code",
    )


def add_addon_arguments(parser: argparse.ArgumentParser) -> None:
    """The LoRA and embedding folders (the app and `sdtui generate`)."""
    parser.add_argument(
        "--lora-dir",
        metavar="DIR",
        help="LoRA folder for <lora:name:weight> tags (default: config loras, SDTUI_LORAS)",
    )
    parser.add_argument(
        "--embeddings-dir",
        metavar="DIR",
        help="textual-inversion embeddings folder (default: config embeddings, SDTUI_EMBEDDINGS)",
    )


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the bare `sdtui` command (the TUI)."""
    from sdtui.engine.performance import add_performance_arguments

    add_model_arguments(parser)
    add_performance_arguments(parser)
    add_gallery_argument(parser)
    add_addon_arguments(parser)
    parser.add_argument(
        "--renderer",
        choices=RENDERERS,
        help="how to draw images: auto (ask the terminal), tgp (kitty), sixel, halfcell, unicode",
    )
    parser.add_argument("--theme", metavar="NAME", help="colour theme (remembered when changed)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        default=None,
        help="run the engine on a thread of the app instead of its own process",
    )
    parser.add_argument(
        "--server", metavar="URL", help="generate on a running sdtui serve (shared GPU box)"
    )
    parser.add_argument(
        "--token-file", metavar="PATH", help="file holding the server's token (or set "
        "SDTUI_SERVER_TOKEN)",
    )


def check_gallery_folder(settings: Settings) -> None:
    """Refuse a gallery path that names a file (or anything but a folder) before any
    model is loaded; a path that does not exist yet is fine, it will be created."""
    path = settings.gallery
    if os.path.lexists(path) and not path.is_dir():
        raise ValidationError("gallery", f"{path_text(path)} is not a folder")


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        name: getattr(args, name, None)
        for name in (
            "gallery", "model", "device", "dtype", "allow_pickle", "renderer", "theme",
            "in_process",
        )
    }
    overrides["loras"] = getattr(args, "lora_dir", None)
    overrides["embeddings"] = getattr(args, "embeddings_dir", None)
    return load_settings(overrides)
