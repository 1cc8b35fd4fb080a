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
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and each subcommand's own parser."""
    from sdtui.cli import common

    parser = argparse.ArgumentParser(
        prog="sdtui",
        description="Keyboard-driven terminal app for Stable Diffusion. "
        "Run without a command to open the app. The app's options may come before a "
        "command where that command takes them: `sdtui --model demo generate ...`.",
    )
    parser.add_argument("--version", action="version", version=f"sdtui {__version__}")
    common.add_app_arguments(parser)
    # Each command's options are added when it is chosen (see _Subcommands).
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=_Subcommands)
    assert isinstance(sub, _Subcommands)
    parsers: dict[str, argparse.ArgumentParser] = {}
    for name, (module_name, help_text) in _available_subcommands().items():
        parsers[name] = sub.add_parser(name, help=help_text, description=help_text)
        sub.modules[name] = module_name
    return parser, parsers


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, with the app's options before a command given to it;
    exits with status 2 on bad input."""
    parser, parsers = _build()
    args = parser.parse_args(argv)
    if args.command is not None:
        _apply_global_options(args, _global_options_first(argv), parser, parsers[args.command])
    return args


def _global_options_first(argv: Sequence[str] | None) -> argparse.Namespace:
    """The app's options as given before the command (none given: all None)."""
    from sdtui.cli import common

    before = argparse.ArgumentParser(add_help=False, argument_default=None)
    common.add_app_arguments(before)
    for action in before._actions:
        action.default = None  # only what was typed counts
    before.add_argument("command", nargs="?")
    before.add_argument("rest", nargs=argparse.REMAINDER)
    known, _ = before.parse_known_args(argv)
    return known


def _apply_global_options(
    args: argparse.Namespace,
    first: argparse.Namespace,
    parser: argparse.ArgumentParser,
    command_parser: argparse.ArgumentParser,
) -> None:
    """Give a command the app options typed before it, with the same meaning as after
    it (an option after the command wins); refuse one the command does not take."""
    accepted = _command_defaults(args, command_parser)
    for action in parser._actions:
        value = getattr(first, action.dest, None)
        if not action.option_strings or action.dest in ("help", "version") or value is None:
            continue
        if action.dest not in accepted:
            parser.error(f"{action.option_strings[0]} does not apply to 'sdtui {args.command}'")
        if getattr(args, action.dest, None) == accepted[action.dest]:
            setattr(args, action.dest, value)


def _command_defaults(
    args: argparse.Namespace, command_parser: argparse.ArgumentParser
) -> dict[str, object]:
    """dest -> default of every option of the command as chosen (`gallery list` too)."""
    defaults: dict[str, object] = {}
    current: argparse.ArgumentParser | None = command_parser
    while current is not None:
        chosen = None
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                name = getattr(args, action.dest, None)
                chosen = action.choices.get(name) if name else None
            elif action.option_strings:
                defaults[action.dest] = current.get_default(action.dest)
        current = chosen
    return defaults


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
    args = parse_args(argv)
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
