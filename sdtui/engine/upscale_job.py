"""One upscale from a picture file to a new gallery image that records its source."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdtui.engine.upscale import DEFAULT_TILE, load_upscaler, upscale_image
from sdtui.errors import ValidationError
from sdtui.images import open_image
from sdtui.params import GenerationRequest
from sdtui.results import GeneratedImage, GenerationResult
from sdtui.workflows import file_sha256

if TYPE_CHECKING:
    from sdtui.gallery.entry import GalleryEntry
    from sdtui.gallery.store import GalleryStore


@dataclass(frozen=True)
class UpscaleDone:
    entry: GalleryEntry  # the new image
    size: tuple[int, int]
    seconds: float
    record: dict[str, Any]  # what the `sdtui` chunk says about the source


def source_request(path: Path, upscaler: str, scale: float) -> GenerationRequest:
    """The source's own request (a remix makes the source again), marked as upscaled."""
    from sdtui.gallery.metadata import read_metadata

    extras = (("Postprocess upscaler", upscaler), ("Postprocess upscale by", f"{scale:g}"))
    try:
        request = read_metadata(path).request()
    except ValidationError:  # a photo, or settings we cannot take: a plain record
        return GenerationRequest(prompt=f"upscaled {path.name}", seed=0, extras=extras)
    kept = tuple((k, v) for k, v in request.extras if k not in dict(extras))
    return request.replace(extras=kept + extras)


def upscale_into_gallery(
    source: Path,
    upscaler_path: Path,
    gallery: GalleryStore,
    device: str = "cpu",
    scale: float | None = None,
    tile: int = DEFAULT_TILE,
    allow_pickle: bool = False,
    on_tile: Callable[[int, int], None] | None = None,
) -> UpscaleDone:
    """Upscale the picture at `source` and save it as a new image; the source is not touched."""
    image = open_image(source, "image")
    upscaler = load_upscaler(upscaler_path, allow_pickle=allow_pickle)
    scale = scale or float(upscaler.scale)
    request = source_request(source, upscaler.name, scale)
    started = time.perf_counter()
    result_image = upscale_image(upscaler, image, device, scale, tile, on_tile=on_tile)
    seconds = time.perf_counter() - started
    generated = GeneratedImage(result_image, request.seed or 0, 0, request)
    record = {
        "source": str(Path(source).resolve()),
        "source_sha256": file_sha256(source),
        "source_size": list(image.size),
        "upscaler": upscaler.name,
        "upscaler_file": str(upscaler_path),
        "architecture": upscaler.architecture,
        "model_scale": upscaler.scale,
        "scale": scale,
        "tile": tile,
    }
    result = GenerationResult(
        request=request,
        images=[generated],
        model_id=f"upscaler:{upscaler.name}",
        device=device,
        dtype="fp32",
        generate_seconds=seconds,
        info={"workflow": "upscale", "upscale": record},
    )
    entry = gallery.save(generated, result)
    return UpscaleDone(entry, result_image.size, seconds, record)
