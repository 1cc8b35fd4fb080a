"""Cheap step previews of the latents (linear latent->RGB projection, or TAESD).

Placeholder interface: the engine asks for a previewer once per request and
calls it from its step callback with the current latents.
"""

from __future__ import annotations

from typing import Any


def make_previewer(family: str, mode: str = "latent", max_fps: float = 4.0) -> Any | None:
    """A callable `(latents, step, total) -> PIL.Image | None`, or None when previews are off.

    The callable returns None for steps it skips to stay within `max_fps`.
    """
    return None
