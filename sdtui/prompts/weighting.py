"""Prompt weighting (`(word:1.3)`, `(word)`, `[word]`) and long prompts, through compel.

The engine calls `encode_prompt_kwargs` before each image. A plain prompt that
fits the text encoder's window returns None, so it takes diffusers' own path and
its pixels stay exactly what plain diffusers makes. Weighted or long prompts are
encoded by compel from our own parse (A1111 syntax), so compel's different
syntax (`word+`, `.and()`) never reinterprets ordinary text; prompts longer than
the window are encoded in chunks rather than cut off.
"""

from __future__ import annotations

from typing import Any

from sdtui.prompts.syntax import WeightedPrompt, parse_weighted

# CLIP's window: 77 positions, two of them the start and end markers.
CLIP_MAX_LENGTH = 77
_MARKERS = 2


def _tokenizer_limit(tokenizer: Any) -> int:
    length = getattr(tokenizer, "model_max_length", CLIP_MAX_LENGTH)
    if not isinstance(length, int) or length > 100_000:  # "no limit" sentinel
        length = CLIP_MAX_LENGTH
    return length - _MARKERS


def _count_tokens(tokenizer: Any, text: str) -> int:
    if not text:
        return 0
    ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return len(ids)


def _estimate_tokens(text: str) -> int:
    """CLIP-like count without a tokenizer: words, numbers and punctuation runs.

    A lower bound (rare long words take several tokens); the TUI shows it while
    no model is loaded.
    """
    import re

    return len(re.findall(r"[^\W\d_]+|\d|[^\w\s]+", text.lower()))


def token_count(tokenizer_or_model_family: Any, prompt: str) -> tuple[int, int]:
    """(tokens the prompt uses, tokens that fit in one window of the text encoder).

    Give a tokenizer or a loaded pipeline for an exact count, or a model family
    name ("sd1", "sd2", "sdxl", "demo") for an estimate. Weighting brackets are
    not counted; a malformed prompt is counted as written.
    """
    try:
        text = parse_weighted(prompt).plain_text
    except ValueError:
        text = prompt
    target = tokenizer_or_model_family
    if isinstance(target, str):
        return _estimate_tokens(text), CLIP_MAX_LENGTH - _MARKERS
    tokenizer = getattr(target, "tokenizer", None) or target
    return _count_tokens(tokenizer, text), _tokenizer_limit(tokenizer)


def needs_weighting(tokenizer: Any, prompt: WeightedPrompt, raw: str) -> bool:
    """True when diffusers' plain text path would not encode `raw` faithfully."""
    if prompt.has_syntax:
        return True
    return _count_tokens(tokenizer, raw) > _tokenizer_limit(tokenizer)


def _compel(tokenizer: Any, text_encoder: Any, embeddings_type: Any, pooled: bool = False) -> Any:
    from compel import Compel

    dtype = text_encoder.dtype
    return Compel(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        truncate_long_prompts=False,
        returned_embeddings_type=embeddings_type,
        requires_pooled=pooled,
        dtype_for_device_getter=lambda _device: dtype,
    )


def _embed(compel: Any, prompt: WeightedPrompt) -> Any:
    from compel.prompt_parser import FlattenedPrompt
    from compel.prompt_parser import Fragment as CompelFragment

    parts = [CompelFragment(f.text, f.weight) for f in prompt.fragments if f.text]
    if not parts:
        parts = [CompelFragment("", 1.0)]
    (embeds, _tokens), _options = compel.build_conditioning_tensor_for_prompt_object(
        FlattenedPrompt(parts)
    )
    return embeds


def _pad_pair(compel: Any, positive: Any, negative: Any) -> tuple[Any, Any]:
    positive, negative = compel.pad_conditioning_tensors_to_same_length([positive, negative])
    return positive, negative


def _encode_sd(pipe: Any, positive: WeightedPrompt, negative: WeightedPrompt) -> dict[str, Any]:
    from compel import ReturnedEmbeddingsType

    compel = _compel(
        pipe.tokenizer, pipe.text_encoder, ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED
    )
    embeds, negative_embeds = _pad_pair(compel, _embed(compel, positive), _embed(compel, negative))
    return {"prompt_embeds": embeds, "negative_prompt_embeds": negative_embeds}


def _encode_sdxl(pipe: Any, positive: WeightedPrompt, negative: WeightedPrompt) -> dict[str, Any]:
    import torch
    from compel import ReturnedEmbeddingsType

    kind = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
    first = _compel(pipe.tokenizer, pipe.text_encoder, kind)
    second = _compel(pipe.tokenizer_2, pipe.text_encoder_2, kind, pooled=True)
    halves = []
    for compel in (first, second):
        halves.append(_pad_pair(compel, _embed(compel, positive), _embed(compel, negative)))
    # The two encoders may chunk differently; pad both to the longer one.
    length = max(halves[0][0].shape[1], halves[1][0].shape[1])
    padded = []
    for compel, (pos, neg) in zip((first, second), halves, strict=True):
        if pos.shape[1] < length:
            filler = compel.conditioning_provider.empty_z
            repeats = (length - pos.shape[1]) // filler.shape[1]
            extra = filler.repeat(pos.shape[0], repeats, 1).to(pos.dtype)
            pos, neg = torch.cat([pos, extra], dim=1), torch.cat([neg, extra], dim=1)
        padded.append((pos, neg))
    embeds = torch.cat([padded[0][0], padded[1][0]], dim=-1)
    negative_embeds = torch.cat([padded[0][1], padded[1][1]], dim=-1)
    provider = second.conditioning_provider
    pooled = provider.get_pooled_embeddings([positive.plain_text])
    negative_pooled = provider.get_pooled_embeddings([negative.plain_text])
    if not negative.plain_text.strip() and getattr(
        pipe.config, "force_zeros_for_empty_prompt", False
    ):
        # What SDXL itself does for an empty negative prompt.
        negative_embeds = torch.zeros_like(negative_embeds)
        negative_pooled = torch.zeros_like(negative_pooled)
    return {
        "prompt_embeds": embeds,
        "negative_prompt_embeds": negative_embeds,
        "pooled_prompt_embeds": pooled,
        "negative_pooled_prompt_embeds": negative_pooled,
    }


def encode_prompt_kwargs(pipe: Any, prompt: str, negative_prompt: str) -> dict[str, Any] | None:
    """Pipeline keyword arguments (prompt_embeds, ...) for a weighted or long prompt.

    None when neither prompt uses weighting syntax and both fit in one window:
    the pipeline then gets the plain text. ValidationError for malformed syntax.
    """
    positive = parse_weighted(prompt, "prompt")
    negative = parse_weighted(negative_prompt or "", "negative prompt")
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None or getattr(pipe, "text_encoder", None) is None:
        return None  # a pipeline without a CLIP encoder of its own: plain text only
    if not (
        needs_weighting(tokenizer, positive, prompt)
        or needs_weighting(tokenizer, negative, negative_prompt or "")
    ):
        return None
    import torch

    with torch.no_grad():
        if getattr(pipe, "text_encoder_2", None) is not None:
            return _encode_sdxl(pipe, positive, negative)
        return _encode_sd(pipe, positive, negative)
