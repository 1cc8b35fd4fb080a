"""From what the user wrote to the requests to queue: styles, then wildcards, then checks.

The one entry point front ends call before handing requests to the engine.
Every request it returns carries its final prompt (nothing left to resolve),
with what was applied recorded in `extras`, so an image's metadata remixes it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path

from sdtui.addons import AddonLibrary
from sdtui.errors import ValidationError
from sdtui.params import MAX_SEED, GenerationRequest
from sdtui.prompts import wildcards
from sdtui.prompts.styles import StyleCatalog, style_request
from sdtui.prompts.syntax import check_prompt_syntax

WILDCARD_PROMPT = "Wildcard prompt"
WILDCARD_NEGATIVE = "Wildcard negative prompt"
WILDCARD_CHOICES = "Wildcard choices"


def _record(
    request: GenerationRequest,
    prompt: str,
    negative: str,
    picks: list[wildcards.Choice],
    **changes: object,
) -> GenerationRequest:
    extras = dict(request.extras)
    if wildcards.has_wildcards(request.prompt):
        extras[WILDCARD_PROMPT] = request.prompt
    if wildcards.has_wildcards(request.negative_prompt):
        extras[WILDCARD_NEGATIVE] = request.negative_prompt
    extras[WILDCARD_CHOICES] = wildcards.describe_choices(picks)
    return request.replace(
        prompt=prompt, negative_prompt=negative, extras=tuple(extras.items()), **changes
    )


def resolve_request(
    request: GenerationRequest, folder: Path | None = None
) -> list[GenerationRequest]:
    """One request per image, each with wildcards picked by that image's own seed.

    Without wildcards the request comes back unchanged (one batch).
    """
    if not (
        wildcards.has_wildcards(request.prompt) or wildcards.has_wildcards(request.negative_prompt)
    ):
        return [request]
    base = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    out = []
    for seed in request.image_seeds(base):
        prompt, picks = wildcards.resolve_wildcards(request.prompt, seed, folder)
        negative, negative_picks = wildcards.resolve_wildcards(
            request.negative_prompt, seed, folder
        )
        out.append(_record(request, prompt, negative, picks + negative_picks, seed=seed, count=1))
    return out


def combination_requests(
    request: GenerationRequest, folder: Path | None = None
) -> list[GenerationRequest]:
    """One request for every combination of the wildcards, all with the same seed."""
    seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    out = []
    negatives = wildcards.combinations(request.negative_prompt, folder)
    for prompt, picks in wildcards.combinations(request.prompt, folder):
        for negative, negative_picks in negatives:
            out.append(_record(request, prompt, negative, picks + negative_picks, seed=seed))
    if len(out) > wildcards.MAX_COMBINATIONS:
        raise ValidationError(
            "prompt",
            f"the wildcards make {len(out)} combinations; the limit is "
            f"{wildcards.MAX_COMBINATIONS}",
        )
    return out


def prepare_requests(
    request: GenerationRequest,
    styles: Iterable[str] = (),
    combinations: bool = False,
    catalog: StyleCatalog | None = None,
    wildcard_folder: Path | None = None,
    addons: AddonLibrary | None = None,
) -> list[GenerationRequest]:
    """Apply styles, resolve wildcards (seeded, or every combination), check weighting;
    with `addons`, check the LoRA and embedding names and tags.

    Raises ValidationError (unknown style, missing wildcard file, malformed
    weights) before anything is queued.
    """
    styled = style_request(request, list(styles), catalog)
    if combinations:
        requests = combination_requests(styled, wildcard_folder)
    else:
        requests = resolve_request(styled, wildcard_folder)
    for item in requests:
        check_prompt_syntax(item.prompt, item.negative_prompt)
    if addons is not None:
        for item in requests:
            addons.resolve(item)  # unknown names refused now; the engine records the hashes
    return requests
