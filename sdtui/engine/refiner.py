"""SDXL's refiner as an optional second stage (A1111's "Refiner" / "Refiner switch at").

The base model denoises the first `refiner_switch` of the schedule and hands
its latents over; the refiner (StableDiffusionXLImg2ImgPipeline) finishes the
rest. The refiner shares the base model's VAE and its large text encoder
(OpenCLIP bigG), as the two published models do, so only its UNet is new
memory. It is loaded on first use and kept while the base model stays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sdtui.engine import loader
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.schedulers import scheduler_spec

if TYPE_CHECKING:
    import torch
    from diffusers.configuration_utils import FrozenDict
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline
    from diffusers.schedulers.scheduling_utils import SchedulerMixin
    from diffusers.utils import BaseOutput

REFINER_CLASS = "StableDiffusionXLImg2ImgPipeline"


class RefinerStage:
    """The loaded refiner for one base pipeline, with its schedulers by name."""

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._pipe: DiffusionPipeline | None = None
        self._scheduler_config: FrozenDict | None = None
        self._schedulers: dict[str, SchedulerMixin] = {}

    def clear(self) -> None:
        self._key, self._pipe, self._schedulers = None, None, {}

    def pipeline(
        self,
        model: str,
        base: DiffusionPipeline,
        torch_dtype: torch.dtype,
        device: str,
        allow_pickle: bool = False,
    ) -> DiffusionPipeline:
        """The refiner `model`, loaded against `base` (reused while both stay the same)."""
        source = loader.resolve_source(model)
        key = (source.key, id(base))
        if self._key == key and self._pipe is not None:
            return self._pipe
        self.clear()
        import diffusers

        if source.kind not in ("hub", "folder"):
            raise ValidationError("refiner", "give a hub id or a diffusers folder for the refiner")
        kwargs: dict[str, Any] = loader._dtype_kwargs(torch_dtype)
        if not allow_pickle:
            kwargs["use_safetensors"] = True
        if source.kind == "hub":
            kwargs["token"] = loader.hub_token()
            if loader.hub_offline():
                kwargs["local_files_only"] = True
        shared = {"vae": base.vae}
        if getattr(base, "text_encoder_2", None) is not None:
            shared["text_encoder_2"] = base.text_encoder_2
        loader.quiet_library_output()
        with loader.explain_load_errors(source, kwargs.get("token")):
            pipe: DiffusionPipeline = getattr(diffusers, REFINER_CLASS).from_pretrained(
                source.location, **shared, **kwargs
            )
            pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._key, self._pipe = key, pipe
        self._scheduler_config = pipe.scheduler.config
        return pipe

    def use_scheduler(self, name: str) -> None:
        """The same sampler as the base stage, built from the refiner's own config."""
        scheduler = self._schedulers.get(name)
        if scheduler is None:
            import diffusers

            spec = scheduler_spec(name)
            scheduler_class = getattr(diffusers, spec.class_name)
            scheduler = scheduler_class.from_config(self._scheduler_config, **spec.options)
            self._schedulers[name] = scheduler
        assert self._pipe is not None, "the refiner is loaded first"
        self._pipe.scheduler = scheduler


def base_stage_kwargs(request: GenerationRequest) -> dict[str, Any]:
    """What the base call gets when a refiner follows: stop early, hand latents over."""
    return {"denoising_end": request.refiner_switch, "output_type": "latent"}


def refine(
    pipe: DiffusionPipeline,
    request: GenerationRequest,
    latents: torch.Tensor,
    generator: torch.Generator,
    callback: Callable[..., dict[str, Any]],
) -> BaseOutput:
    """Finish `latents` from the switch point; returns the pipeline output (PIL images)."""
    output: BaseOutput = pipe(  # type: ignore[operator]  # each pipeline class has __call__
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        image=latents,
        num_inference_steps=request.steps,
        denoising_start=request.refiner_switch,
        guidance_scale=request.cfg,
        generator=generator,
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents"],
        output_type="pil",
    )
    return output
