"""What a front end needs from the engine, as a Protocol it can annotate with.

Importing this module costs nothing: no torch, no diffusers, not even the
engine module (its types are read by the type checker only). Tests and other
back ends (a remote server) satisfy `EngineLike` without subclassing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sdtui.results import CancelToken, GeneratedImage, GenerationResult, StepProgress

if TYPE_CHECKING:
    from sdtui.engine.engine import Engine, LoadedModel
    from sdtui.params import GenerationRequest

StatusCallback = Callable[[str], None]
ProgressCallback = Callable[[StepProgress], None]
ImageCallback = Callable[[GeneratedImage], None]


class EngineLike(Protocol):
    """Loads a model and makes images from requests, one job at a time."""

    device: str  # "cuda", "mps", "cpu"
    dtype: str  # "fp16", "bf16", "fp32"

    @property
    def loaded(self) -> LoadedModel | None: ...

    def load(
        self, model: str, on_status: StatusCallback | None = None, config: str | None = None
    ) -> LoadedModel: ...

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        on_image: ImageCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> GenerationResult: ...

    def unload(self) -> None: ...


if TYPE_CHECKING:

    def _engine_fits(engine: Engine) -> EngineLike:
        return engine  # the type checker holds `Engine` to the Protocol
