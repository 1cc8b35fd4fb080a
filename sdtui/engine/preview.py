"""Cheap step previews of the latents (linear latent->RGB projection, or TAESD).

The engine asks for a previewer once per request and calls it from its step
callback, on its own worker thread, with the current (scaled) latents. Frames
are throttled to `max_fps`: a terminal cannot show more, and every frame costs
a device->host copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sdtui.errors import ValidationError

if TYPE_CHECKING:
    from PIL.Image import Image

PREVIEW_MODES = ("latent", "taesd", "off")

# Rows: latent channels; columns: R, G, B. Maps SD latents to roughly [-1, 1].
SD_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SDXL_LATENT_RGB = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_LATENT_BIAS = (0.1084, -0.0175, -0.0011)
_ZERO_BIAS = (0.0, 0.0, 0.0)

# Tiny autoencoders that decode SD / SDXL latents in a few milliseconds.
TAESD_REPOS = {"sd": "madebyollin/taesd", "sdxl": "madebyollin/taesdxl"}

# Projection previews are at latent resolution (1/8); double them so a terminal shows detail.
DEFAULT_UPSCALE = 2

_taesd_cache: dict[tuple[str, str, str], Any] = {}


def latent_kind(family: str) -> str:
    """ "sdxl" for SDXL models, "sd" for SD 1.x/2.x and the demo model."""
    return "sdxl" if family.lower().startswith("sdxl") else "sd"


def latent_rgb_factors(family: str) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """The (4x3 factors, RGB bias) projection for a model family."""
    if latent_kind(family) == "sdxl":
        return SDXL_LATENT_RGB, SDXL_LATENT_BIAS
    return SD_LATENT_RGB, _ZERO_BIAS


def _to_image(rgb: Any, upscale: int) -> Image:
    """A (3, h, w) tensor in about [-1, 1] -> an RGB PIL image, nearest-upscaled."""
    import torch
    from PIL import Image as PILImage

    # Quantise on the device so only h*w*3 bytes cross to the host.
    pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to("cpu", dtype=torch.uint8)
    image = PILImage.fromarray(pixels.permute(1, 2, 0).contiguous().numpy(), "RGB")
    if upscale > 1:
        image = image.resize(
            (image.width * upscale, image.height * upscale), PILImage.Resampling.NEAREST
        )
    return image


def latents_to_rgb(latents: Any, family: str, upscale: int = DEFAULT_UPSCALE) -> Image:
    """Project the first latent of a (batch, 4, h, w) or (4, h, w) tensor to an RGB image."""
    import torch

    if latents.ndim == 4:
        latents = latents[0]
    if latents.ndim != 3 or latents.shape[0] != 4:
        raise ValueError(f"expected 4-channel latents, got shape {tuple(latents.shape)}")
    factors, bias = latent_rgb_factors(family)
    weight = torch.tensor(factors, dtype=torch.float32, device=latents.device)
    offset = torch.tensor(bias, dtype=torch.float32, device=latents.device)
    rgb = torch.einsum("chw,cr->rhw", latents.float(), weight) + offset[:, None, None]
    return _to_image(rgb, upscale)


def load_taesd(family: str, device: Any, dtype: Any) -> Any | None:
    """The tiny autoencoder for `family` from the local hub cache, or None if not cached."""
    repo = TAESD_REPOS[latent_kind(family)]
    key = (repo, str(device), str(dtype))
    if key not in _taesd_cache:
        from diffusers import AutoencoderTiny

        try:
            vae = AutoencoderTiny.from_pretrained(repo, local_files_only=True, torch_dtype=dtype)
        except (OSError, ValueError):
            return None  # not downloaded yet: this never reaches for the network
        _taesd_cache[key] = vae.to(device).eval().requires_grad_(False)
    return _taesd_cache[key]


class Previewer:
    """Turns latents into a small picture, at most `max_fps` times a second.

    `note` says why the mode differs from the one asked for; `frames` and
    `seconds` count what the previews cost, for the benchmark.
    """

    def __init__(
        self,
        family: str,
        mode: str = "latent",
        max_fps: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
        upscale: int = DEFAULT_UPSCALE,
    ) -> None:
        self.family = family
        self.mode = mode
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self.clock = clock
        self.upscale = upscale
        self.note = ""
        self.frames = 0
        self.seconds = 0.0
        self._last: float | None = None
        self._taesd: Any = None

    def due(self) -> bool:
        """Whether enough time passed since the last frame (the first frame is always due)."""
        return self._last is None or self.clock() - self._last >= self.min_interval

    def __call__(self, latents: Any, step: int, total: int) -> Image | None:
        if latents is None or not self.due():
            return None
        started = time.perf_counter()
        self._last = self.clock()
        try:
            image = self._render(latents)
        except (ValueError, RuntimeError) as exc:
            # A model whose latents do not fit the projection: stop previewing, keep generating.
            self.note = f"previews off: {exc}"
            self.min_interval = float("inf")
            return None
        self.frames += 1
        self.seconds += time.perf_counter() - started
        return image

    def _render(self, latents: Any) -> Image:
        import torch

        with torch.no_grad():
            if self.mode == "taesd":
                if self._taesd is None:
                    self._taesd = load_taesd(self.family, latents.device, latents.dtype)
                    if self._taesd is None:
                        repo = TAESD_REPOS[latent_kind(self.family)]
                        self.note = f"{repo} is not downloaded; showing the latent preview"
                        self.mode = "latent"
                if self._taesd is not None:
                    decoded = self._taesd.decode(latents[:1]).sample[0]
                    return _to_image(decoded.float(), upscale=1)
            return latents_to_rgb(latents, self.family, self.upscale)


def check_preview_mode(mode: str) -> str:
    mode = str(mode).strip().lower()
    if mode not in PREVIEW_MODES:
        raise ValidationError("preview", f"must be one of {', '.join(PREVIEW_MODES)}, got {mode!r}")
    return mode


def make_previewer(
    family: str,
    mode: str = "latent",
    max_fps: float = 4.0,
    clock: Callable[[], float] = time.monotonic,
) -> Previewer | None:
    """A callable `(latents, step, total) -> PIL.Image | None`, or None when previews are off.

    The callable returns None for steps it skips to stay within `max_fps`.
    """
    mode = check_preview_mode(mode)
    if mode == "off" or max_fps <= 0:
        return None
    return Previewer(family, mode, max_fps, clock)
