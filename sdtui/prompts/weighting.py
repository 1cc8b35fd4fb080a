"""Prompt weighting (`(word:1.3)`, `(word)`, `[word]`) through compel.

Placeholder interface: the engine calls `encode_prompt_kwargs` before each image.
"""

from __future__ import annotations

from typing import Any


def encode_prompt_kwargs(pipe: Any, prompt: str, negative_prompt: str) -> dict[str, Any] | None:
    """Pipeline keyword arguments (prompt_embeds, ...) for a weighted prompt.

    None when the prompt needs no weighting: the pipeline then gets the plain text.
    """
    return None
