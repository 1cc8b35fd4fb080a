"""`sdtui expand PROMPT`: grow a short prompt into several detailed versions."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the short prompt to expand")
    parser.add_argument("--count", type=int, metavar="N", help="how many versions (default 4)")
    parser.add_argument(
        "--seed", type=int, metavar="N", help="sampling seed; the same seed gives the same versions"
    )
    parser.add_argument(
        "--model",
        metavar="ID|PATH",
        help="causal language model: hub id or local folder "
        "(default: [prompts] expander, or Gustavosta/MagicPrompt-Stable-Diffusion)",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, metavar="N", help="how much text to add (default 60)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def run(args: argparse.Namespace) -> int:
    from sdtui.config import load_settings
    from sdtui.prompts.expand import ExpandSettings, expand_prompt

    settings = ExpandSettings.from_section(load_settings().section("prompts"))
    if not args.json:
        print(f"expanding with {args.model or settings.model} ...", file=sys.stderr)
    result = expand_prompt(
        args.prompt,
        settings,
        seed=args.seed,
        model=args.model,
        count=args.count,
        max_new_tokens=args.max_new_tokens,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "prompt": result.prompt,
                    "seed": result.seed,
                    "model": result.model,
                    "candidates": result.candidates,
                },
                ensure_ascii=False,
            )
        )
        return 0
    for number, text in enumerate(result.candidates, 1):
        print(f"{number}. {text}")
    if not result.candidates:
        print("the model added nothing new; try another --seed", file=sys.stderr)
    print(f"seed {result.seed} (repeat with --seed {result.seed})", file=sys.stderr)
    return 0
