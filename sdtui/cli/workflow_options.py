"""The image-to-image flags of `sdtui generate`: init image, mask, outpaint, hires fix."""

from __future__ import annotations

import argparse
from typing import Any

from sdtui.config import Settings


def add_workflow_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image to image")
    group.add_argument("--init-image", metavar="PATH", help="start from this picture (img2img)")
    group.add_argument(
        "--strength", metavar="F", help="how much of it to repaint, 0-1 (default 0.75)"
    )
    group.add_argument("--mask", metavar="PATH", help="repaint only where this is white")
    group.add_argument("--mask-blur", metavar="N", help="feather the mask by N pixels (default 4)")
    group.add_argument(
        "--inpaint-only-masked",
        action="store_true",
        default=None,
        help="repaint only the masked area, enlarged to the full size (A1111's 'only masked')",
    )
    group.add_argument(
        "--mask-padding", metavar="N", help="with --inpaint-only-masked: context pixels (32)"
    )
    group.add_argument(
        "--outpaint",
        metavar="SIDE:PIXELS",
        action="append",
        default=[],
        help="extend the canvas (repeatable; sides left, right, up, down; multiples of 8)",
    )
    group.add_argument(
        "--hires-scale", metavar="F", help="hires fix: upscale the first pass by F (e.g. 2)"
    )
    group.add_argument(
        "--hires-steps", metavar="N", help="steps of the second pass (default: as the first)"
    )
    group.add_argument(
        "--hires-denoise", metavar="F", help="strength of the second pass, 0-1 (default 0.5)"
    )
    group.add_argument(
        "--hires-upscaler",
        metavar="latent|NAME",
        help="how to enlarge between passes: latent (default) or an upscaler (`sdtui upscalers`)",
    )


def workflow_fields(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The request fields the flags give; an init image sets the size unless flags do."""
    fields: dict[str, Any] = {}
    init = getattr(args, "init_image", None)
    if init:
        from sdtui.images import open_image, snap_size

        fields["init_image"] = init
        if args.width is None or args.height is None:
            # The picture's own size (to a multiple of 8) rather than the model's.
            width, height = snap_size(*open_image(init, "init image").size)
            args.width = args.width if args.width is not None else width
            args.height = args.height if args.height is not None else height
    for flag, name in (
        ("strength", "strength"),
        ("mask", "mask"),
        ("mask_blur", "mask_blur"),
        ("inpaint_only_masked", "inpaint_only_masked"),
        ("mask_padding", "mask_padding"),
        ("hires_scale", "hires_scale"),
        ("hires_steps", "hires_steps"),
        ("hires_denoise", "hires_denoise"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            fields[name] = value
    if getattr(args, "outpaint", None):
        fields["outpaint"] = tuple(args.outpaint)
    upscaler = getattr(args, "hires_upscaler", None)
    if upscaler and upscaler.strip().lower() != "latent":
        from sdtui.engine.upscale import find_upscaler, upscaler_dir

        # The engine knows no folders: it gets the file itself.
        folder = upscaler_dir(getattr(args, "upscaler_dir", None), settings.extra.get("upscalers"))
        fields["hires_upscaler"] = str(find_upscaler(upscaler.strip(), folder))
    elif upscaler:
        fields["hires_upscaler"] = "latent"
    return fields


def check_files(request: Any) -> Any:
    """Read the init image and mask now (bad files stop before any model loads); add hashes.

    What will be adjusted (a mask of another size, resized) is said on stderr.
    """
    if request.init_image is None:
        return request
    import sys

    from sdtui.images import prepare_inputs
    from sdtui.workflows import with_file_hashes

    for notice in prepare_inputs(request).notices:
        print(f"sdtui: {notice}", file=sys.stderr)
    return with_file_hashes(request)
