"""Cheap step previews of the latents (linear latent->RGB projection, or TAESD).

The engine asks for a previewer once per request and calls it from its step
callback, on its own worker thread, with the current (scaled) latents. Frames
are throttled to `max_fps`: a terminal cannot show more, and every frame costs
a device->host copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sdtui import families
from sdtui.errors import ValidationError

if TYPE_CHECKING:
    import torch
    from diffusers.models.autoencoders.autoencoder_tiny import AutoencoderTiny
    from PIL.Image import Image

PREVIEW_MODES = ("latent", "taesd", "off")

# Rows: latent channels; columns: R, G, B. Maps latents to roughly [-1, 1].
# The factors of every family live in the family registry.
SD_LATENT_RGB = families.SD_LATENT_RGB
SDXL_LATENT_RGB = families.SDXL_LATENT_RGB
SDXL_LATENT_BIAS = families.SDXL_LATENT_BIAS
_ZERO_BIAS = (0.0, 0.0, 0.0)

# Tiny autoencoders that decode SD / SDXL latents in a few milliseconds.
TAESD_REPOS = {"sd": "madebyollin/taesd", "sdxl": "madebyollin/taesdxl"}

# Projection previews are at latent resolution (1/8); double them so a terminal shows detail.
DEFAULT_UPSCALE = 2

_taesd_cache: dict[tuple[str, str, str], AutoencoderTiny] = {}


def latent_kind(family: str) -> str:
    """ "sdxl", "sd3" or "flux" for those families; "sd" for SD 1.x/2.x, the demo and others."""
    name = family.lower()
    if name.startswith("sdxl"):
        return "sdxl"
    if name in ("sd3", "flux"):
        return name
    return "sd"


def latent_rgb_factors(family: str) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """The (channels x 3 factors, RGB bias) projection for a model family."""
    kind = latent_kind(family)
    entry = families.FAMILIES.get({"sd": "sd1"}.get(kind, kind))
    if entry is None or entry.latent_rgb is None:  # pragma: no cover - every kind has an entry
        return SD_LATENT_RGB, _ZERO_BIAS
    return entry.latent_rgb, entry.latent_bias


def unpack_latents(
    latents: torch.Tensor, image_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """FLUX's packed (batch, tokens, channels*4) latents as (batch, channels, h, w).

    Each token holds a 2x2 patch of the latent image; `image_size` (width,
    height) gives the shape of the token grid (square when not known).
    """
    batch, tokens, packed = latents.shape
    if image_size is not None and image_size[0] and image_size[1]:
        rows = max(1, round((tokens * image_size[1] / image_size[0]) ** 0.5))
    else:
        rows = max(1, round(tokens**0.5))
    cols = tokens // rows
    if rows * cols != tokens or packed % 4:
        raise ValueError(f"cannot unpack latents of shape {tuple(latents.shape)}")
    channels = packed // 4
    grid = latents.reshape(batch, rows, cols, channels, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(batch, channels, rows * 2, cols * 2)


def _to_image(rgb: torch.Tensor, upscale: int) -> Image:
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


def latents_to_rgb(
    latents: torch.Tensor,
    family: str,
    upscale: int = DEFAULT_UPSCALE,
    image_size: tuple[int, int] | None = None,
) -> Image:
    """Project the first latent of a (batch, channels, h, w) or (channels, h, w) tensor to RGB.

    FLUX's packed (batch, tokens, 64) latents are unpacked first.
    """
    import torch

    if latent_kind(family) == "flux" and latents.ndim == 3 and latents.shape[-1] % 4 == 0:
        latents = unpack_latents(latents[:1], image_size)
    if latents.ndim == 4:
        latents = latents[0]
    factors, bias = latent_rgb_factors(family)
    if latents.ndim != 3 or latents.shape[0] != len(factors):
        raise ValueError(
            f"expected {len(factors)}-channel latents, got shape {tuple(latents.shape)}"
        )
    weight = torch.tensor(factors, dtype=torch.float32, device=latents.device)
    offset = torch.tensor(bias, dtype=torch.float32, device=latents.device)
    rgb = torch.einsum("chw,cr->rhw", latents.float(), weight) + offset[:, None, None]
    return _to_image(rgb, upscale)


def taesd_repo(family: str) -> str:
    """The tiny autoencoder that decodes this family's latents."""
    kind = latent_kind(family)
    entry = families.FAMILIES.get({"sd": "sd1"}.get(kind, kind))
    return entry.taesd if entry and entry.taesd else TAESD_REPOS["sd"]


def load_taesd(
    family: str, device: torch.device | str, dtype: torch.dtype
) -> AutoencoderTiny | None:
    """The tiny autoencoder for `family` from the local hub cache, or None if not cached."""
    repo = taesd_repo(family)
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
        self._taesd: AutoencoderTiny | None = None
        # (width, height) of the image being made: the shape of FLUX's packed token grid.
        self.image_size: tuple[int, int] | None = None

    def due(self) -> bool:
        """Whether enough time passed since the last frame (the first frame is always due)."""
        return self._last is None or self.clock() - self._last >= self.min_interval

    def __call__(self, latents: torch.Tensor | None, step: int, total: int) -> Image | None:
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

    def _render(self, latents: torch.Tensor) -> Image:
        import torch

        with torch.no_grad():
            if self.mode == "taesd":
                if self._taesd is None:
                    self._taesd = load_taesd(self.family, latents.device, latents.dtype)
                    if self._taesd is None:
                        repo = taesd_repo(self.family)
                        self.note = f"{repo} is not downloaded; showing the latent preview"
                        self.mode = "latent"
                if self._taesd is not None:
                    return _to_image(self._taesd_decode(latents).float(), upscale=1)
            return latents_to_rgb(latents, self.family, self.upscale, self.image_size)

    def _taesd_decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The tiny autoencoder's picture; SD 3/FLUX latents are unscaled as their VAE does."""
        if latent_kind(self.family) == "flux" and latents.ndim == 3:
            latents = unpack_latents(latents[:1], self.image_size)
        config = getattr(self._taesd, "config", None)
        scale = float(getattr(config, "scaling_factor", 1.0) or 1.0)
        shift = float(getattr(config, "shift_factor", 0.0) or 0.0)
        latents = latents[:1] / scale + shift if scale != 1.0 or shift else latents[:1]
        assert self._taesd is not None  # `_render` loaded it
        picture: torch.Tensor = self._taesd.decode(latents).sample[0]
        return picture


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
