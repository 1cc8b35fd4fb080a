"""What the engine reports back: progress events and finished images.

No torch here: the TUI and the gallery receive these objects too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdtui.params import GenerationRequest

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True)
class StepProgress:
    """One denoising step done. `step` counts from 1 to `total` within image `image_index`."""

    step: int
    total: int
    elapsed: float  # seconds since this request started
    image_index: int = 0
    image_count: int = 1
    preview: Image | None = None

    @property
    def fraction(self) -> float:
        """How much of the whole request is done, 0..1."""
        done = self.image_index * self.total + self.step
        return done / max(1, self.total * self.image_count)


@dataclass(frozen=True)
class GeneratedImage:
    """One finished image with the seed it was made from."""

    image: Image
    seed: int
    index: int
    request: GenerationRequest  # the batch's request; `seed` above is this image's own

    def image_request(self) -> GenerationRequest:
        """The request that reproduces exactly this image alone."""
        return self.request.replace(seed=self.seed, count=1)


@dataclass(frozen=True)
class GenerationResult:
    request: GenerationRequest
    images: list[GeneratedImage]
    model_id: str  # what was actually loaded (hub id, folder or file)
    device: str
    dtype: str
    load_seconds: float = 0.0  # 0 when the pipeline was already loaded
    generate_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return [img.seed for img in self.images]


class CancelToken:
    """Set from any thread; the engine checks it at every step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
