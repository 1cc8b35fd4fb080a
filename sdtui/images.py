"""Preparing the pictures of an image-to-image request: init image, mask, outpaint canvas.

Pillow and numpy only (no torch): the engine and the tests both use these, and
every rule about pixels (what is repainted, what is pasted back) lives here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdtui.errors import ValidationError
from sdtui.workflows import outpaint_size

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdtui.params import GenerationRequest


def open_image(path: str | Path, label: str = "image") -> Image:
    """The picture at `path` in memory; ValidationError with one clear line when it cannot be."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    path = Path(path).expanduser()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as im:
                im.load()
                return im.copy()
    except FileNotFoundError:
        raise ValidationError(label, f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValidationError(label, f"{path}: is a folder, not an image") from None
    except PermissionError:
        raise ValidationError(label, f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ValidationError(label, f"{path}: not an image file") from None
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise ValidationError(label, f"{path}: too large to open safely") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ValidationError(label, f"{path}: damaged or unreadable image ({exc})") from None


def to_rgb(image: Image) -> Image:
    """RGB, with any transparency laid on white rather than on undefined colours."""
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def to_mask(image: Image) -> Image:
    """A greyscale mask (white = repaint); a transparent-background mask uses its alpha."""
    if image.mode in ("RGBA", "LA"):
        alpha = image.getchannel("A")
        if alpha.getextrema() != (255, 255):
            return alpha
    return image.convert("L")


def snap_size(width: int, height: int) -> tuple[int, int]:
    """A size the models take: each side down to a multiple of 8, at least 64, at most 2048."""
    return (min(2048, max(64, width // 8 * 8)), min(2048, max(64, height // 8 * 8)))


@dataclass
class PreparedInputs:
    """What the engine feeds the pipeline for one request (the same for every image)."""

    image: Image  # the canvas to start from, at the size the pipeline runs
    mask: Image | None  # sharp mask given to the pipeline (white = repaint), or None
    paste_mask: Image | None  # blurred mask: where the result replaces the original
    notices: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def prepare_inputs(request: GenerationRequest) -> PreparedInputs:
    """Init image resized to the request's size, its mask, and the outpaint canvas."""
    if request.init_image is None:
        raise ValidationError("init image", "is not set")
    notices: list[str] = []
    source = open_image(request.init_image, "init image")
    source_size = source.size
    size = (request.width, request.height)
    image = to_rgb(source)
    if image.size != size:
        image = image.resize(size, _lanczos())
    mask = None
    if request.mask is not None:
        mask = to_mask(open_image(request.mask, "mask"))
        if mask.size != source_size:
            notices.append(
                f"the mask is {mask.size[0]}x{mask.size[1]} and the image "
                f"{source_size[0]}x{source_size[1]}: the mask was resized to fit"
            )
        if mask.size != size:
            mask = mask.resize(size, _lanczos())
        # An "L" mask's extrema are two numbers (Pillow types them for every mode).
        if mask.getextrema()[1] < 128:  # type: ignore[operator]
            raise ValidationError("mask", f"{request.mask}: has no white area to repaint")
    if request.outpaint:
        image, mask = outpaint_canvas(image, mask, request)
    paste = blur_mask(mask, request.mask_blur) if mask is not None else None
    return PreparedInputs(image=image, mask=mask, paste_mask=paste, notices=tuple(notices))


def outpaint_canvas(
    image: Image, mask: Image | None, request: GenerationRequest
) -> tuple[Image, Image]:
    """The larger canvas: the picture in place, its edges stretched into the new area,
    and a mask that is white over the new area (plus any mask given for the picture)."""
    import numpy as np
    from PIL import Image as PILImage

    sides = dict(request.outpaint)
    left, up = sides.get("left", 0), sides.get("up", 0)
    right, down = sides.get("right", 0), sides.get("down", 0)
    pixels = np.asarray(image)
    # Edge colours give the model something to continue from; noise alone reads as a border.
    padded = np.pad(pixels, ((up, down), (left, right), (0, 0)), mode="edge")
    canvas = PILImage.fromarray(padded)
    width, height = outpaint_size(request)
    assert canvas.size == (width, height)
    new_mask = np.full((height, width), 255, dtype=np.uint8)
    inner = np.asarray(mask) if mask is not None else np.zeros(pixels.shape[:2], np.uint8)
    new_mask[up : up + pixels.shape[0], left : left + pixels.shape[1]] = inner
    return canvas, PILImage.fromarray(new_mask, mode="L")


def blur_mask(mask: Image, radius: int) -> Image:
    """The mask feathered by a Gaussian blur of `radius` pixels (A1111's mask blur)."""
    from PIL import ImageFilter

    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask.copy()


def paste_back(original: Image, generated: Image, paste_mask: Image) -> Image:
    """The generated pixels where the mask is white, the original ones where it is black.

    The pipeline repaints the whole canvas (its VAE round trip shifts every
    pixel a little); this keeps the unmasked part exactly as it was.
    """
    from PIL import Image as PILImage

    if generated.size != original.size:
        generated = generated.resize(original.size, _lanczos())
    return PILImage.composite(generated.convert("RGB"), original.convert("RGB"), paste_mask)


def _lanczos() -> int:
    from PIL import Image as PILImage

    return PILImage.Resampling.LANCZOS
