"""Options shared by the app and the subcommands, and turning them into Settings."""

from __future__ import annotations

import argparse

from sdtui.config import DEVICES, DTYPES, RENDERERS, Settings, load_settings


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


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the bare `sdtui` command (the TUI)."""
    from sdtui.engine.performance import add_performance_arguments

    add_model_arguments(parser)
    add_performance_arguments(parser)
    add_gallery_argument(parser)
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


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        name: getattr(args, name, None)
        for name in (
            "gallery", "model", "device", "dtype", "allow_pickle", "renderer", "theme",
            "in_process",
        )
    }
    return load_settings(overrides)
