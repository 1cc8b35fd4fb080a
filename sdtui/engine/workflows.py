"""Image-to-image, inpainting, outpainting and the hires fix, on the loaded pipeline.

The img2img and inpaint pipelines are made from the loaded text-to-image one
with diffusers' `from_pipe`: they hold the very same UNet, VAE and text encoder
objects, so nothing is loaded again and no weights are copied. The engine
calls `generate` for every request that `sdtui.workflows.is_workflow` flags.
"""

from __future__ import annotations

import functools
import secrets
import time
from typing import TYPE_CHECKING, Any

from sdtui import workflows
from sdtui.engine import device as devices
from sdtui.errors import GenerationCancelled, SdtuiError
from sdtui.images import PreparedInputs, paste_back, prepare_inputs
from sdtui.params import MAX_SEED, GenerationRequest
from sdtui.results import CancelToken, GeneratedImage, GenerationResult

if TYPE_CHECKING:
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline
    from PIL.Image import Image

    from sdtui.engine.engine import (
        Engine,
        ImageCallback,
        LoadedModel,
        ProgressCallback,
        StatusCallback,
    )
    from sdtui.engine.upscale import Upscaler


def is_inpainting_model(pipe: DiffusionPipeline) -> bool:
    """Inpainting checkpoints feed the mask and the masked image to the UNet: 9 channels."""
    unet = getattr(pipe, "unet", None)
    return getattr(getattr(unet, "config", None), "in_channels", 4) == 9


def image_pipeline(pipe: DiffusionPipeline, kind: str) -> DiffusionPipeline:
    """The `kind` ("img2img" or "inpaint") pipeline sharing every component of `pipe`."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    auto = AutoPipelineForInpainting if kind == "inpaint" else AutoPipelineForImage2Image
    # from_pipe casts the shared modules to its `torch_dtype` (float32 when not given):
    # pass the pipeline's own, or an fp16 model would be converted in place.
    derived: DiffusionPipeline = auto.from_pipe(pipe, torch_dtype=pipe.dtype)
    derived.set_progress_bar_config(disable=True)
    return derived


def generate(
    engine: Engine,
    request: GenerationRequest,
    loaded: LoadedModel,
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
    on_image: ImageCallback | None,
    on_status: StatusCallback | None,
) -> GenerationResult:
    """Make the images of an img2img / inpaint / outpaint / hires request (engine lock held)."""
    import torch

    from sdtui.engine import performance
    from sdtui.prompts.weighting import encode_prompt_kwargs

    status = on_status or (lambda _text: None)
    pipe = engine.pipeline
    assert pipe is not None  # the engine loaded the model just before
    engine.use_scheduler(request.scheduler)
    inputs: PreparedInputs | None = None
    if request.init_image is not None:
        request = workflows.with_file_hashes(request)
        inputs = prepare_inputs(request)
        for notice in inputs.notices:
            status(notice)
    width, height = inputs.size if inputs is not None else workflows.hires_size(request)
    performance.apply_request_settings(
        pipe, engine._performance_options(), width, height, request.count
    )
    kind = "img2img"
    if inputs is not None and (inputs.mask is not None or is_inpainting_model(pipe)):
        kind = "inpaint"
    elif inputs is None and is_inpainting_model(pipe):
        raise SdtuiError(
            f"{loaded.model_id} is an inpainting model; give it an image and a mask to repaint"
        )
    second = image_pipeline(pipe, kind)
    prompt_kwargs = encode_prompt_kwargs(pipe, request.prompt, request.negative_prompt) or {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or None,
    }
    base_seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    previewer = engine._previewer(loaded.family)
    started = time.perf_counter()
    images: list[GeneratedImage] = []
    blacked_out: list[int] = []
    for index, seed in enumerate(request.image_seeds(base_seed)):
        if cancel is not None and cancel.cancelled:
            raise GenerationCancelled()
        generator = torch.Generator(device=devices.generator_device(engine.device))
        generator.manual_seed(seed)
        callback = engine._step_callback(request, index, started, on_progress, cancel, previewer)
        common = {
            **prompt_kwargs,
            "guidance_scale": request.cfg,
            "num_images_per_prompt": 1,
            "generator": generator,
            "callback_on_step_end": callback,
            "callback_on_step_end_tensor_inputs": ["latents"],
        }
        if inputs is not None:
            image, flagged = _image_to_image(second, kind, inputs, request, common)
        else:
            image, flagged = _hires_fix(engine, pipe, second, request, common, status)
        if flagged:
            blacked_out.append(seed)
        generated = GeneratedImage(image, seed, index, request)
        images.append(generated)
        if on_image is not None:
            on_image(generated)
    return GenerationResult(
        request=request,
        images=images,
        model_id=loaded.model_id,
        device=engine.device,
        dtype=engine.dtype,
        load_seconds=loaded.load_seconds,
        generate_seconds=time.perf_counter() - started,
        info={
            "family": loaded.family,
            "base_seed": base_seed,
            "notice": loaded.notice,
            "notes": list(loaded.notes),
            "blacked_out_seeds": blacked_out,
            "workflow": _describe(request, kind),
            "notices": list(inputs.notices) if inputs is not None else [],
        },
    )


def _describe(request: GenerationRequest, kind: str) -> str:
    if request.init_image is None:
        return "hires fix"
    if request.outpaint:
        return "outpaint"
    return "inpaint" if request.mask is not None else kind


def _image_to_image(
    pipe: DiffusionPipeline,
    kind: str,
    inputs: PreparedInputs,
    request: GenerationRequest,
    common: dict[str, Any],
) -> tuple[Image, bool]:
    width, height = inputs.size
    kwargs = dict(common, image=inputs.image, strength=request.strength)
    kwargs["num_inference_steps"] = request.steps
    if kind == "inpaint":
        from PIL import Image as PILImage

        # An inpainting model given no mask repaints the whole picture.
        mask = inputs.mask if inputs.mask is not None else PILImage.new("L", inputs.size, 255)
        kwargs.update(mask_image=mask, width=width, height=height)
        if request.inpaint_only_masked:
            # diffusers crops the masked area (plus padding), paints it at the full
            # width x height and lays it back: A1111's "inpaint only masked".
            kwargs["padding_mask_crop"] = request.mask_padding
    output = _call(pipe, request.strength, kwargs)
    image = output.images[0]
    if inputs.paste_mask is not None:
        image = paste_back(inputs.image, image, inputs.paste_mask)
    return image, _blacked_out(output)


def _blacked_out(output: Any) -> bool:
    """True when the model's safety checker replaced the picture with black."""
    flagged = getattr(output, "nsfw_content_detected", None)
    return bool(flagged and flagged[0])


def _call(pipe: DiffusionPipeline, strength: float, kwargs: dict[str, Any]) -> Any:
    """Run the pipeline; at a strength so small that no step runs, give back the input.

    diffusers refuses a schedule with no steps; no denoising means no change, so
    the picture comes back as it went in (latents are only decoded).
    """
    from types import SimpleNamespace

    if int(kwargs["num_inference_steps"] * strength) >= 1:
        return pipe(**kwargs, output_type="pil")  # type: ignore[operator]  # subclasses' __call__
    import torch

    image = kwargs["image"]
    if not isinstance(image, torch.Tensor):
        return SimpleNamespace(images=[image.copy()])
    with torch.no_grad():  # the hires fix's latent upscale: decode it as it is
        latents = image.to(pipe.device, pipe.vae.dtype) / pipe.vae.config.scaling_factor
        decoded = pipe.vae.decode(latents).sample
    return SimpleNamespace(images=pipe.image_processor.postprocess(decoded, output_type="pil"))


def _hires_fix(
    engine: Engine,
    pipe: DiffusionPipeline,
    img2img: DiffusionPipeline,
    request: GenerationRequest,
    common: dict[str, Any],
    status: StatusCallback,
) -> tuple[Image, bool]:
    """A1111's two passes: the base size, upscaled, then img2img at the hires strength."""
    import torch

    width, height = workflows.hires_size(request)
    wanted_latent = request.hires_upscaler == workflows.LATENT_UPSCALER
    # UNet models keep (B, 4, H/8, W/8) latents that can be resized as pictures are;
    # transformer models (SD 3, FLUX) pack theirs: those are enlarged in pixels.
    latent = wanted_latent and getattr(pipe, "unet", None) is not None
    if wanted_latent and not latent:
        status("latent upscale needs a UNet model's latents: enlarging in pixels instead")
    base = pipe(  # type: ignore[operator]  # each pipeline class has __call__
        **common,
        num_inference_steps=request.steps,
        width=request.width,
        height=request.height,
        output_type="latent" if latent else "pil",
    )
    if latent:
        factor = getattr(pipe, "vae_scale_factor", 8)
        image: Any = torch.nn.functional.interpolate(
            base.images, size=(height // factor, width // factor), mode="bilinear"
        )
    elif wanted_latent:
        image = base.images[0].resize((width, height), _lanczos())
    else:
        from sdtui.engine import upscale

        status(f"upscaling with {request.hires_upscaler}")
        path = upscale.find_upscaler(request.hires_upscaler)
        model = _upscaler(str(path), path.stat().st_mtime_ns, engine.allow_pickle)
        image = upscale.upscale_image(model, base.images[0], device=engine.device)
        image = image.resize((width, height), _lanczos())
    steps = request.hires_steps or request.steps
    kwargs = dict(common, image=image, strength=request.hires_denoise, num_inference_steps=steps)
    output = _call(img2img, request.hires_denoise, kwargs)
    return output.images[0], _blacked_out(output)


@functools.lru_cache(maxsize=1)
def _upscaler(path: str, _mtime_ns: int, allow_pickle: bool) -> Upscaler:
    """The hires fix's upscaler, kept for the next image (one at a time: they are large).

    The file's modification time is part of the key: a replaced file is read again.
    """
    from pathlib import Path

    from sdtui.engine import upscale

    return upscale.load_upscaler(Path(path), allow_pickle=allow_pickle)


def _lanczos() -> int:
    from PIL import Image as PILImage

    return PILImage.Resampling.LANCZOS
