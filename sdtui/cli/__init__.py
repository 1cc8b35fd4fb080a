"""The `sdtui` command: the TUI when called bare, subcommands for scripts.

Each subcommand lives in its own module with `add_arguments(parser)` and
`run(args) -> int`; those modules import nothing heavy at the top, so
`sdtui --help` and the TUI start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sdtui import __version__
from sdtui.errors import SdtuiError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("sdtui.cli.generate", "make images from a prompt without the TUI"),
    "info": ("sdtui.cli.info", "show the settings stored in an image"),
    "models": ("sdtui.cli.models", "list the short model names and what is cached"),
    "gallery": ("sdtui.cli.gallery", "list, search, rebuild and import the gallery"),
    "bench": ("sdtui.cli.bench", "measure generation speed against plain diffusers"),
    "expand": ("sdtui.cli.expand", "grow a short prompt into detailed versions"),
    "styles": ("sdtui.cli.styles", "list the prompt styles"),
}


def _available_subcommands() -> dict[str, tuple[str, str]]:
    return {
        name: spec
        for name, spec in SUBCOMMANDS.items()
        if importlib.util.find_spec(spec[0]) is not None
    }


def build_parser() -> argparse.ArgumentParser:
    from sdtui.cli import common

    parser = argparse.ArgumentParser(
        prog="sdtui",
        description="Keyboard-driven terminal app for Stable Diffusion. "
        "Run without a command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"sdtui {__version__}")
    common.add_app_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in _available_subcommands().items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from sdtui.cli import app

            return app.run(args)
        module = importlib.import_module(_available_subcommands()[args.command][0])
        return module.run(args)
    except SdtuiError as exc:
        print(f"sdtui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sdtui: interrupted", file=sys.stderr)
        return 130
