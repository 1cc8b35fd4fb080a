"""`sdtui styles`: list the prompt styles (built-in and your own) and presets."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument(
        "--presets", action="store_true", help="list the settings presets instead of styles"
    )


def _settings_text(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def run(args: argparse.Namespace) -> int:
    if args.presets:
        return _run_presets(args)
    from sdtui.prompts.styles import load_styles, styles_dir

    catalog = load_styles()
    for problem in catalog.problems:
        print(f"sdtui: skipped {problem}", file=sys.stderr)
    styles = sorted(catalog.styles.values(), key=lambda s: s.name)
    if args.json:
        print(json.dumps([s.to_dict() for s in styles], ensure_ascii=False, indent=2))
        return 0
    for style in styles:
        origin = "" if style.source == "built-in" else f"  [{style.source}]"
        print(f"{style.name}{origin}")
        if style.description:
            print(f"  {style.description}")
        print(f"  template: {style.template}")
        if style.negative:
            print(f"  negative: {style.negative}")
        if style.settings:
            print(f"  settings: {_settings_text(style.settings)}")
    print(f"\nyour own styles: {styles_dir()}/*.toml", file=sys.stderr)
    return 0


def _run_presets(args: argparse.Namespace) -> int:
    from sdtui.prompts.presets import load_presets, presets_dir

    presets, problems = load_presets()
    for problem in problems:
        print(f"sdtui: skipped {problem}", file=sys.stderr)
    ordered = sorted(presets.values(), key=lambda p: p.name)
    if args.json:
        rows = [
            {
                "name": p.name,
                "description": p.description,
                "settings": p.settings,
                "source": p.source,
            }
            for p in ordered
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for preset in ordered:
        origin = "" if preset.source == "built-in" else f"  [{preset.source}]"
        print(f"{preset.name}{origin}: {preset.description}")
        print(f"  {_settings_text(preset.settings)}")
    print(f"\nyour own presets: {presets_dir()}/*.toml", file=sys.stderr)
    return 0
