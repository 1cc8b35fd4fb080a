"""Speed and memory settings applied to a loaded pipeline (fp16, SDPA, channels-last,
VAE tiling/slicing, CPU offload, torch.compile).

Placeholder interface: the engine calls `apply_performance` after every load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PerformanceOptions:
    """Each field "auto" picks a sensible default for the device and image size."""

    channels_last: str = "auto"  # auto | on | off
    vae_tiling: str = "auto"  # auto | on | off
    vae_slicing: str = "auto"  # auto | on | off
    offload: str = "none"  # none | model | sequential
    compile: bool = False


def apply_performance(pipe: Any, options: PerformanceOptions, device: str) -> list[str]:
    """Apply `options` to `pipe` in place; return short notes of what was turned on."""
    return []
