"""The image-to-image settings of a request: init image, mask, outpaint, hires fix.

Stdlib only (the TUI imports the request type). `GenerationRequest` calls
`check_workflow_fields` when it is built; `a1111_pairs` and `fields_from_a1111`
write and read these settings under AUTOMATIC1111's own `parameters` keys.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdtui.errors import ValidationError

if TYPE_CHECKING:
    from sdtui.params import GenerationRequest

OUTPAINT_SIDES = ("left", "right", "up", "down")
OUTPAINT_MAX = 1024  # pixels added on one side
MASK_BLUR_RANGE = (0, 64)
HIRES_SCALE_RANGE = (1.0, 4.0)
HIRES_STEPS_RANGE = (0, 150)  # 0: as many as the first pass, as A1111 does
LATENT_UPSCALER = "latent"
DEFAULT_STRENGTH = 0.75
DEFAULT_HIRES_DENOISE = 0.5

# A1111's keys for these settings in the `parameters` text.
KEY_STRENGTH = "Denoising strength"
KEY_HIRES_SCALE = "Hires upscale"
KEY_HIRES_STEPS = "Hires steps"
KEY_HIRES_UPSCALER = "Hires upscaler"
KEY_MASK_BLUR = "Mask blur"
KEY_INPAINT_AREA = "Inpaint area"
KEY_MASK_PADDING = "Masked area padding"
MASK_PADDING_RANGE = (0, 256)
KEY_OUTPAINT = "Outpaint"
A1111_KEYS = (
    KEY_STRENGTH,
    KEY_HIRES_SCALE,
    KEY_HIRES_STEPS,
    KEY_HIRES_UPSCALER,
    KEY_MASK_BLUR,
    KEY_INPAINT_AREA,
    KEY_MASK_PADDING,
    KEY_OUTPAINT,
)


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise ValidationError(name, f"must be a number from {lo:g} to {hi:g}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValidationError(
            name, f"must be a number from {lo:g} to {hi:g}, got {value!r}"
        ) from None
    if number != number or not lo <= number <= hi:
        raise ValidationError(name, f"must be from {lo:g} to {hi:g}, got {value}")
    return number


def _whole(name: str, value: object, lo: int, hi: int) -> int:
    number = _number(name, value, lo, hi)
    if not number.is_integer():
        raise ValidationError(name, f"must be a whole number from {lo} to {hi}, got {value}")
    return int(number)


def _path(name: str, value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ValidationError(name, f"must be a file path, got {type(value).__name__}")
    return str(value).strip() if isinstance(value, str) else os.fspath(value)


def _sha(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if len(text) != 64 or any(ch not in "0123456789abcdef" for ch in text):
        raise ValidationError(name, "must be 64 hexadecimal digits")
    return text


def parse_outpaint(value: Any) -> tuple[tuple[str, int], ...]:
    """`("left:64", ("up", 32))`, `"left:64 up:32"` or a mapping → `(("left", 64), ("up", 32))`.

    Each side appears once (a repeated side adds up); pixels are multiples of 8.
    """
    if value is None or value == "" or value == ():
        return ()
    if isinstance(value, str):
        items: Any = value.replace(",", " ").split()
    elif isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = list(value)
    totals: dict[str, int] = {}
    for item in items:
        if isinstance(item, str):
            side, sep, pixels = item.partition(":")
            if not sep:
                raise ValidationError("outpaint", f"{item!r} is not SIDE:PIXELS (e.g. left:128)")
        else:
            try:
                side, pixels = item
            except (TypeError, ValueError):
                raise ValidationError("outpaint", f"{item!r} is not SIDE:PIXELS") from None
        side = str(side).strip().lower()
        if side not in OUTPAINT_SIDES:
            raise ValidationError(
                "outpaint", f"side {side!r} is not one of {', '.join(OUTPAINT_SIDES)}"
            )
        count = _whole(f"outpaint {side}", pixels, 8, OUTPAINT_MAX)
        if count % 8:
            raise ValidationError(f"outpaint {side}", f"must be a multiple of 8, got {count}")
        totals[side] = totals.get(side, 0) + count
        if totals[side] > OUTPAINT_MAX:
            raise ValidationError(f"outpaint {side}", f"adds up to more than {OUTPAINT_MAX}")
    return tuple((side, totals[side]) for side in OUTPAINT_SIDES if side in totals)


def format_outpaint(outpaint: tuple[tuple[str, int], ...]) -> str:
    return " ".join(f"{side}:{pixels}" for side, pixels in outpaint)


def check_workflow_fields(request: GenerationRequest) -> None:
    """Validate and normalise the workflow fields of a request being built (frozen)."""
    set_ = object.__setattr__
    set_(request, "init_image", _path("init image", request.init_image))
    set_(request, "init_image_sha256", _sha("init image sha256", request.init_image_sha256))
    set_(request, "strength", _number("strength", request.strength, 0.0, 1.0))
    set_(request, "mask", _path("mask", request.mask))
    set_(request, "mask_sha256", _sha("mask sha256", request.mask_sha256))
    set_(request, "mask_blur", _whole("mask blur", request.mask_blur, *MASK_BLUR_RANGE))
    if not isinstance(request.inpaint_only_masked, bool):
        raise ValidationError("inpaint only masked", "must be true or false")
    set_(request, "mask_padding", _whole("mask padding", request.mask_padding, *MASK_PADDING_RANGE))
    set_(request, "outpaint", parse_outpaint(request.outpaint))
    if request.hires_scale is not None:
        scale = _number("hires scale", request.hires_scale, *HIRES_SCALE_RANGE)
        set_(request, "hires_scale", None if scale == 1.0 else scale)
    set_(request, "hires_steps", _whole("hires steps", request.hires_steps, *HIRES_STEPS_RANGE))
    set_(request, "hires_denoise", _number("hires denoise", request.hires_denoise, 0.0, 1.0))
    upscaler = request.hires_upscaler
    if not isinstance(upscaler, str) or not upscaler.strip():
        raise ValidationError("hires upscaler", "is empty; use 'latent' or an upscaler's name")
    upscaler = upscaler.strip()
    set_(request, "hires_upscaler", LATENT_UPSCALER if upscaler.lower() == "latent" else upscaler)
    if request.mask and not request.init_image:
        raise ValidationError("mask", "needs an init image to repaint (--init-image)")
    if request.inpaint_only_masked and not request.mask:
        raise ValidationError("inpaint only masked", "needs a mask (--mask)")
    if request.outpaint and not request.init_image:
        raise ValidationError("outpaint", "needs an init image to extend (--init-image)")
    if request.hires_scale is not None and request.init_image:
        raise ValidationError("hires scale", "works on text-to-image only; drop --init-image")
    if request.hires_scale is not None:
        width, height = hires_size(request)
        if max(width, height) > 4096:
            raise ValidationError(
                "hires scale", f"would make {width}x{height}; the limit is 4096 on a side"
            )


def uses_init_image(request: GenerationRequest) -> bool:
    return request.init_image is not None


def is_workflow(request: GenerationRequest) -> bool:
    """True when the request needs more than one plain text-to-image pass."""
    return request.init_image is not None or request.hires_scale is not None


def hires_size(request: GenerationRequest) -> tuple[int, int]:
    """The second pass's size: the base size times the scale, down to a multiple of 8."""
    scale = request.hires_scale or 1.0
    return (
        max(64, int(request.width * scale) // 8 * 8),
        max(64, int(request.height * scale) // 8 * 8),
    )


def outpaint_size(request: GenerationRequest) -> tuple[int, int]:
    """The canvas after outpainting: the request's size plus each side's pixels."""
    sides = dict(request.outpaint)
    return (
        request.width + sides.get("left", 0) + sides.get("right", 0),
        request.height + sides.get("up", 0) + sides.get("down", 0),
    )


def a1111_pairs(request: GenerationRequest) -> list[tuple[str, str]]:
    """The `Key: value` pairs these settings add to the `parameters` text."""
    pairs: list[tuple[str, str]] = []
    if request.init_image is not None:
        pairs.append((KEY_STRENGTH, f"{request.strength:g}"))
        if request.mask is not None:
            pairs.append((KEY_MASK_BLUR, str(request.mask_blur)))
            if request.inpaint_only_masked:  # A1111's words for it
                pairs.append((KEY_INPAINT_AREA, "Only masked"))
                pairs.append((KEY_MASK_PADDING, str(request.mask_padding)))
        if request.outpaint:
            pairs.append((KEY_OUTPAINT, format_outpaint(request.outpaint)))
    elif request.hires_scale is not None:
        pairs.append((KEY_STRENGTH, f"{request.hires_denoise:g}"))
        pairs.append((KEY_HIRES_SCALE, f"{request.hires_scale:g}"))
        if request.hires_steps:
            pairs.append((KEY_HIRES_STEPS, str(request.hires_steps)))
        pairs.append((KEY_HIRES_UPSCALER, _a1111_upscaler(request.hires_upscaler)))
    return pairs


def _a1111_upscaler(name: str) -> str:
    """A1111 names upscalers, not files: a path is written as its file name's stem."""
    if name == LATENT_UPSCALER:
        return "Latent"
    return Path(name).stem if ("/" in name or os.sep in name) else name


def fields_from_a1111(settings: Mapping[str, str]) -> dict[str, Any]:
    """Request fields from A1111 keys: the hires fix, and a strength where no hires was used.

    A1111 writes "Denoising strength" for img2img and for the hires pass; which
    one it was shows by "Hires upscale" being there. Without the source file an
    img2img strength cannot make the image again, so it is left in extras.
    """
    fields: dict[str, Any] = {}
    if KEY_HIRES_SCALE in settings:
        fields["hires_scale"] = settings[KEY_HIRES_SCALE]
        if KEY_STRENGTH in settings:
            fields["hires_denoise"] = settings[KEY_STRENGTH]
        if KEY_HIRES_STEPS in settings:
            fields["hires_steps"] = settings[KEY_HIRES_STEPS]
        upscaler = settings.get(KEY_HIRES_UPSCALER, "")
        if upscaler:
            # A1111's latent modes ("Latent", "Latent (nearest-exact)", ...) are our latent.
            fields["hires_upscaler"] = (
                LATENT_UPSCALER if upscaler.lower().startswith("latent") else upscaler
            )
    return fields


def used_a1111_keys(settings: Mapping[str, str]) -> set[str]:
    """The keys `fields_from_a1111` turned into fields (the rest stay extras)."""
    if KEY_HIRES_SCALE not in settings:
        return set()
    return {KEY_STRENGTH, KEY_HIRES_SCALE, KEY_HIRES_STEPS, KEY_HIRES_UPSCALER} & set(settings)


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def with_file_hashes(request: GenerationRequest) -> GenerationRequest:
    """The request with the sha256 of its init image and mask filled in.

    A hash already recorded (a remix of an older image) must match the file:
    otherwise the result would silently differ, so it is refused.
    """
    changes: dict[str, Any] = {}
    for field, sha_field, label in (
        ("init_image", "init_image_sha256", "init image"),
        ("mask", "mask_sha256", "mask"),
    ):
        path = getattr(request, field)
        if path is None:
            continue
        try:
            actual = file_sha256(Path(path).expanduser())
        except FileNotFoundError:
            raise ValidationError(label, f"{path}: no such file") from None
        except IsADirectoryError:
            raise ValidationError(label, f"{path}: is a folder, not an image") from None
        except OSError as exc:
            raise ValidationError(label, f"{path}: cannot read it ({exc.strerror})") from None
        recorded = getattr(request, sha_field)
        if recorded is not None and recorded != actual:
            raise ValidationError(
                label,
                f"{path} has changed since it was recorded (sha256 {recorded[:12]}…, "
                f"now {actual[:12]}…); give it again to use it as it is now",
            )
        changes[sha_field] = actual
    return request.replace(**changes) if changes else request
