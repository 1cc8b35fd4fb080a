"""Prompt-craft options shared by `sdtui generate` (and scripts): styles, presets,
expansion, wildcard combinations and X/Y grids, turned into the requests to run."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any

from sdtui.errors import SdtuiError, ValidationError

# Request fields a preset may set, and the flag that overrides each.
_PRESET_FLAGS = {
    "steps": "steps",
    "cfg": "cfg",
    "width": "width",
    "height": "height",
    "scheduler": "scheduler",
    "count": "count",
    "model": "model",
    "negative_prompt": "negative",
}


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prompt craft")
    group.add_argument(
        "--style",
        metavar="NAME",
        action="append",
        default=[],
        help="wrap the prompt in a style (repeatable; see `sdtui styles`)",
    )
    group.add_argument(
        "--preset", metavar="NAME", help="start from saved settings (see `sdtui styles --presets`)"
    )
    group.add_argument(
        "--expand",
        action="store_true",
        help="grow the prompt with the expander model first (seeded by --seed)",
    )
    group.add_argument(
        "--combinations",
        action="store_true",
        help="make every combination of the {a|b} and __file__ wildcards",
    )
    group.add_argument(
        "--xy",
        metavar="NAME=V1,V2",
        action="append",
        default=[],
        help="X/Y grid axis (once or twice): seed, steps, cfg, scheduler, width, height, "
        "or prompt=FIND,REPLACE1,... ; saves the cells and a labelled grid",
    )


@dataclass
class PreparedJob:
    """The requests to run in order, and the grid they fill (if any)."""

    requests: list[Any]
    plan: Any = None
    notes: list[str] = field(default_factory=list)
    addons: Any = None  # the AddonLibrary the requests' LoRA and embedding names refer to

    @property
    def image_count(self) -> int:
        return sum(r.count for r in self.requests)


def _apply_preset(args: argparse.Namespace, request: Any) -> Any:
    from sdtui.prompts.presets import load_preset

    preset = load_preset(args.preset)
    given = {
        key
        for key, flag in _PRESET_FLAGS.items()
        if getattr(args, flag, None) not in (None, "")
        and not (key == "count" and str(args.count) == "1")  # --count's default
    }
    settings = {k: v for k, v in preset.settings.items() if k not in given}
    return request.replace(**settings)


def _expand(request: Any, section: dict[str, Any], notes: list[str]) -> Any:
    from sdtui.prompts.expand import ExpandSettings, expand_prompt

    settings = ExpandSettings.from_section(section)
    expansion = expand_prompt(request.prompt, settings, seed=request.seed, count=1)
    if not expansion.candidates:
        raise SdtuiError(
            "the expander added nothing to this prompt", "try another --seed or leave out --expand"
        )
    notes.append(f"expanded prompt: {expansion.candidates[0]}")
    extras = dict(request.extras)
    extras["Expanded from"] = request.prompt
    extras["Expander"] = f"{expansion.model} (seed {expansion.seed})"
    return request.replace(prompt=expansion.candidates[0], extras=tuple(extras.items()))


def prepare_job(args: argparse.Namespace, request: Any, settings: Any) -> PreparedJob:
    """Apply preset, expansion, styles, wildcards and grid axes; refuse bad input first."""
    from sdtui.addons import AddonFolders, AddonLibrary
    from sdtui.prompts.prepare import prepare_requests

    if len(args.xy) > 2:
        raise ValidationError("xy", "give at most two axes (X and Y)")
    axes = []
    if args.xy:  # the grid code loads only for a grid
        from sdtui.prompts.grid import parse_axis

        axes = [parse_axis(text) for text in args.xy]
    notes: list[str] = []
    if args.preset:
        request = _apply_preset(args, request)
    if args.expand:
        request = _expand(request, settings.section("prompts"), notes)
    addons = AddonLibrary(AddonFolders.from_settings(settings))
    requests = prepare_requests(
        request, styles=args.style, combinations=args.combinations, addons=addons
    )
    if not axes:
        return PreparedJob(requests, None, notes, addons)
    if len(requests) != 1 or requests[0].count != 1:
        raise ValidationError("xy", "a grid varies one image; leave out --count and --combinations")
    from sdtui.prompts.grid import plan_grid

    plan = plan_grid(requests[0], axes[0], axes[1] if len(axes) > 1 else None)
    return PreparedJob([cell.request for cell in plan.cells], plan, notes, addons)


def print_notes(job: PreparedJob) -> None:
    for note in job.notes:
        print(f"sdtui: {note}", file=sys.stderr)
