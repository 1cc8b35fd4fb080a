"""The `sdtui` command: the TUI when called bare, subcommands for scripts.

Each subcommand lives in its own module with `add_arguments(parser)` and
`run(args) -> int`; those modules import nothing heavy at the top, so
`sdtui --help` and the TUI start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from sdtui import __version__
from sdtui.display import printable
from sdtui.errors import SdtuiError
from sdtui.logging_setup import redact, setup_logging

log = logging.getLogger("sdtui.cli")

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("sdtui.cli.generate", "make images from a prompt without the TUI"),
    "info": ("sdtui.cli.info", "show the settings stored in an image"),
    "models": ("sdtui.cli.models", "list the short model names and what is cached"),
    "gallery": ("sdtui.cli.gallery", "list, search, rebuild and import the gallery"),
    "bench": ("sdtui.cli.bench", "measure generation speed against plain diffusers"),
    "expand": ("sdtui.cli.expand", "grow a short prompt into detailed versions"),
    "styles": ("sdtui.cli.styles", "list the prompt styles"),
    "serve": ("sdtui.cli.serve", "share one engine and job queue over HTTP"),
    "loras": ("sdtui.cli.loras", "list the LoRA files, their model family and trigger words"),
    "embeddings": ("sdtui.cli.embeddings", "list the textual-inversion embeddings"),
    "upscale": ("sdtui.cli.upscale", "enlarge an image with an upscaler model into the gallery"),
    "upscalers": ("sdtui.cli.upscalers", "list the upscaler models in the upscaler folder"),
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=_Subcommands)
    for name, (module_name, help_text) in _available_subcommands().items():
        sub.add_parser(name, help=help_text, description=help_text)
        sub.modules[name] = module_name
    return parser


class _Subcommands(argparse._SubParsersAction):
    """Subcommands whose options are added when the command is chosen: `sdtui generate`
    then imports only its own module, not those of the ten other commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modules: dict[str, str] = {}

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        name = values[0]  # the command; the rest are its own arguments
        module_name = self.modules.pop(name, None)
        if module_name is not None:
            importlib.import_module(module_name).add_arguments(self.choices[name])
        super().__call__(parser, namespace, values, option_string)


MAX_MESSAGE = 500  # a 5,000-character argument is not echoed back whole


def _say(text: str) -> None:
    """One line on stderr; the terminal may be gone (SIGHUP), which must not hide the status."""
    text = text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
    try:
        print(printable(redact(text), keep="\n"), file=sys.stderr)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_file = setup_logging()
    try:
        if args.command is None:
            from sdtui.cli import app

            return app.run(args)
        module = importlib.import_module(_available_subcommands()[args.command][0])
        code = module.run(args)
        sys.stdout.flush()  # here, so a closed pipe is noticed while it can be handled
        return code
    except BrokenPipeError:
        # `sdtui gallery list | head`: the reader has all it wanted. Quiet, as Unix tools are.
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for `yes | head`
    except SdtuiError as exc:
        log.warning("sdtui %s: %s", args.command or "app", exc, exc_info=exc.__cause__ is not None)
        _say(f"sdtui: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("sdtui: interrupted")
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: one line here, the traceback logged
        log.exception("sdtui %s failed", args.command or "app")
        where = f"; details in {log_file}" if log_file else ""
        text = (str(exc).strip().splitlines() or [""])[0]
        _say(f"sdtui: unexpected error: {type(exc).__name__}: {text}{where}")
        return 1
