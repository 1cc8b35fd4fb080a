"""The keyword arguments one denoising call gets, fitted to the loaded pipeline's family.

SD 1.x/2.x/SDXL take weighted prompts as embeddings; SD 3 and FLUX get the
text as written (their T5 encoder reads it whole). A pipeline in plain mode
gets only the arguments its `__call__` accepts; the ones it does not take are
named, so the front end can say they were not used.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline

# Families whose CLIP-only text path the prompt weighting understands.
WEIGHTED_FAMILIES = ("sd1", "sd2", "sdxl")


def prompt_kwargs(
    pipe: DiffusionPipeline, family: str, prompt: str, negative: str
) -> dict[str, Any]:
    """`prompt`/`negative_prompt`, or the embeddings of a weighted prompt where supported.

    `prompt` and `negative` are the texts the encoder sees (LoRA tags taken out)."""
    if family in WEIGHTED_FAMILIES:
        from sdtui.prompts.weighting import encode_prompt_kwargs

        encoded = encode_prompt_kwargs(pipe, prompt, negative)
        if encoded is not None:
            return encoded
    return {"prompt": prompt, "negative_prompt": negative or None}


def accepted_kwargs(
    pipe: DiffusionPipeline, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The arguments `pipe(...)` accepts, and the names of those it would refuse."""
    try:
        parameters = inspect.signature(inspect.unwrap(type(pipe).__call__)).parameters
    except (TypeError, ValueError):
        return kwargs, []
    # A `**kwargs` beside named parameters only swallows old spellings: what is not
    # named is not used. A bare (*args, **kwargs) wrapper says nothing: pass everything.
    variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    # The first parameter is the pipeline itself, whatever its name.
    named = {name for name, p in list(parameters.items())[1:] if p.kind not in variadic}
    if not named:
        return kwargs, []
    kept = {k: v for k, v in kwargs.items() if k in named}
    dropped = [k for k, v in kwargs.items() if k not in named and v is not None]
    return kept, dropped
