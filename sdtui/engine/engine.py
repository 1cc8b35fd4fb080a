"""The engine: one loaded pipeline, schedulers by name, and the generate loop.

One `Engine` serves one front end. It keeps the pipeline loaded between
requests, parks the pipelines of models it switched away from in CPU memory
(`keep_models`, least recently used first out) so switching back skips the
disk, runs one job at a time (a lock: the GPU does not share well), makes
images one by one with seeds base, base+1, ... so each image reproduces alone,
reports every step, and stops within a step when cancelled, without decoding
or returning the unfinished image.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sdtui import families
from sdtui.addons import AddonLibrary
from sdtui.engine import device as devices
from sdtui.engine import loader, pipeline_call, refiner

# The callback types live with the engine's Protocol, which front ends import.
from sdtui.engine.protocols import ImageCallback, ProgressCallback, StatusCallback
from sdtui.errors import GenerationCancelled, OutOfMemoryError, SdtuiError, ValidationError
from sdtui.params import MAX_SEED, GenerationRequest
from sdtui.results import CancelToken, GeneratedImage, GenerationResult, StepProgress
from sdtui.schedulers import canonical_scheduler, scheduler_spec
from sdtui.workflows import is_workflow

if TYPE_CHECKING:
    from diffusers.configuration_utils import FrozenDict
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

    from sdtui.engine.performance import PerformanceOptions
    from sdtui.engine.preview import Previewer

__all__ = ["Engine", "ImageCallback", "LoadedModel", "ProgressCallback", "StatusCallback"]

# What a loaded pipeline is known by: the weights' location and the single-file config.
SourceKey = tuple[str, "str | None"]


@dataclass(frozen=True)
class LoadedModel:
    """What `Engine.load` put in memory."""

    model_id: str  # the hub id, folder or file actually loaded
    requested: str  # what the user wrote (short name, moved id, path)
    family: str  # "sd1", "sd2", "sdxl", "sd3", "flux", or the pipeline's class name (plain)
    device: str
    dtype: str
    load_seconds: float  # 0 when the pipeline was already loaded
    notice: str = ""  # e.g. "runwayml/... is no longer on the hub; using ..."
    native_size: tuple[int, int] = (512, 512)
    pipeline_class: str = ""
    notes: tuple[str, ...] = field(default=())  # speed options that were turned on
    # The model's own defaults (size, steps, guidance, schedulers) and what runs plain.
    defaults: families.ModelDefaults | None = None


@dataclass
class _Parked:
    """A pipeline switched away from, waiting in CPU memory with what belongs to it."""

    key: SourceKey
    pipe: DiffusionPipeline | None
    loaded: LoadedModel
    scheduler_config: FrozenDict
    schedulers: dict[str, SchedulerMixin]


class _Interrupted(Exception):
    """Raised from the step callback to leave the pipeline before its VAE decode."""


class Engine:
    """Loads models and makes images; safe to call from one worker thread at a time."""

    def __init__(
        self,
        device: str = "auto",
        dtype: str = "auto",
        allow_pickle: bool = False,
        performance: PerformanceOptions | None = None,
        preview: str | None = None,
        addons: AddonLibrary | None = None,
    ) -> None:
        self.addons = addons  # the LoRA and embedding folders the prompts' names refer to
        self.device = devices.choose_device(device)
        self.dtype = devices.choose_dtype(self.device, dtype)
        self._auto_dtype = dtype == "auto"  # then each model gets its family's precision
        self.allow_pickle = allow_pickle
        self.performance = performance
        # None: the `preview` setting of `performance` (off when no options are given).
        self.preview = preview if preview is not None else getattr(performance, "preview", "off")
        self.load_count = 0  # pipelines read from disk, for tests and the status line
        # Re-entrant, so a progress or image callback may call back into the engine.
        self._lock = threading.RLock()
        self._pipe: DiffusionPipeline | None = None
        self._source_key: SourceKey | None = None
        self._loaded: LoadedModel | None = None
        self._schedulers: dict[str, SchedulerMixin] = {}
        self._scheduler_config: FrozenDict | None = None
        # Source key -> parked pipeline, oldest first.
        self._parked: OrderedDict[SourceKey, _Parked] = OrderedDict()
        self._refiner = refiner.RefinerStage()  # SDXL's optional second stage

    # -- loading -------------------------------------------------------------

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    @property
    def parked_models(self) -> tuple[str, ...]:
        """Models waiting in CPU memory for a fast switch back, oldest first."""
        return tuple(parked.loaded.model_id for parked in self._parked.values())

    @property
    def pipeline(self) -> DiffusionPipeline | None:
        """The loaded diffusers pipeline (None before the first load)."""
        return self._pipe

    def load(
        self, model: str, on_status: StatusCallback | None = None, config: str | None = None
    ) -> LoadedModel:
        """Load `model` unless it is already loaded; `config` describes a single-file checkpoint."""
        with self._lock:
            return self._load(model, on_status, config)

    def unload(self) -> None:
        """Drop the pipeline and the parked ones, and give their memory back."""
        with self._lock:
            self._parked.clear()
            self._drop_pipeline()

    def _drop_pipeline(self) -> None:
        self._refiner.clear()
        self._pipe = None
        self._loaded = None
        self._source_key = None
        self._schedulers = {}
        loader.free_device_memory(self.device)

    def _park_pipeline(self, status: StatusCallback) -> None:
        """Move the current pipeline to CPU memory for later, or drop it when it cannot wait."""
        from sdtui.engine import performance

        pipe, loaded, key = self._pipe, self._loaded, self._source_key
        keep = self._performance_options().keep_models
        if (
            keep <= 0
            or pipe is None
            or loaded is None
            or key is None
            or self._scheduler_config is None
            or not performance.can_park(pipe)
        ):
            status("unloading the previous model")
            self._drop_pipeline()
            return
        if self.device != "cpu":
            status(f"moving {loaded.model_id} to CPU memory")
            try:
                pipe.to("cpu")
            except Exception:
                # Parking is a convenience: whatever went wrong, dropping is the old behaviour.
                self._drop_pipeline()
                return
        self._parked[key] = _Parked(key, pipe, loaded, self._scheduler_config, self._schedulers)
        self._parked.move_to_end(key)
        while len(self._parked) > keep:
            self._parked.popitem(last=False)
        self._pipe = None
        self._drop_pipeline()

    def _take_parked(self, key: SourceKey, config: str | None) -> _Parked | None:
        """The parked pipeline for `key`, out of the park (None when it is not there)."""
        for parked_key in self._parked:
            # As for the loaded model: a request naming only the model takes any config.
            if parked_key == key or (config is None and parked_key[0] == key[0]):
                return self._parked.pop(parked_key)
        return None

    def _restore(self, parked: _Parked, model: str, status: StatusCallback) -> LoadedModel | None:
        """Move a parked pipeline back to the device; None when the device is out of memory."""
        status(f"restoring {parked.loaded.model_id} from memory")
        started = time.perf_counter()
        pipe = parked.pipe
        assert pipe is not None  # only a failed restore empties it, and that drops the park
        try:
            pipe = pipe.to(self.device)  # a no-op when the device is the CPU
        except Exception as exc:
            del pipe
            parked.pipe = None
            if not loader.is_out_of_memory(exc):
                loader.free_device_memory(self.device)
                raise SdtuiError(
                    f"could not move {parked.loaded.model_id} back to {self.device}: {exc}"
                ) from exc
            # Other parked pipelines may be what fills memory: start clean from disk.
            status("out of memory restoring the model; loading it again from disk")
            self._parked.clear()
            loader.free_device_memory(self.device)
            return None
        self._pipe = pipe
        self._source_key = parked.key
        self._scheduler_config = parked.scheduler_config
        self._schedulers = parked.schedulers
        self._loaded = replace(
            parked.loaded, requested=model, load_seconds=time.perf_counter() - started
        )
        self.dtype = parked.loaded.dtype
        status(f"ready: {parked.loaded.model_id} on {self.device} ({self.dtype})")
        return self._loaded

    def _load(
        self, model: str, on_status: StatusCallback | None, config: str | None
    ) -> LoadedModel:
        status = on_status or (lambda _text: None)
        if model.strip().lower() == "demo" and not self._demo_ready():
            status("building the demo model (first use only)")
        source = loader.resolve_source(model)
        key = (source.key, config)
        # A request names only the model; it reuses whatever config it was loaded with.
        same = self._source_key is not None and (
            key == self._source_key or (config is None and source.key == self._source_key[0])
        )
        if self._pipe is not None and same and self._loaded is not None:
            loaded = self._loaded
            return replace(loaded, requested=model, load_seconds=0.0)
        parked = self._take_parked(key, config)
        if self._pipe is not None:
            self._park_pipeline(status)
        if parked is not None:
            restored = self._restore(parked, model, status)
            if restored is not None:
                return restored
        if source.notice:
            status(source.notice)
        status(f"loading {source.location}")
        started = time.perf_counter()
        if self._auto_dtype:
            self.dtype = devices.dtype_for_family(self.device, loader.guess_family(source))
        pipe = loader.load_pipeline(
            source, devices.torch_dtype(self.dtype), self.allow_pickle, config=config
        )
        try:
            status(f"moving the model to {self.device}")
            with loader.explain_load_errors(source):
                pipe = pipe.to(self.device)
            pipe.set_progress_bar_config(disable=True)
            notes = tuple(self._apply_performance(pipe))
        except BaseException:
            # Half-moved weights would otherwise hold GPU memory until the next load.
            del pipe
            loader.free_device_memory(self.device)
            raise
        if source.kind == "demo" and self.device == "cpu":
            # The demo's layers are tiny: several CPU threads only contend with each
            # other (and the UI) and run 20-50x slower than one.
            import torch

            torch.set_num_threads(1)
        self.load_count += 1
        defaults = families.defaults_of_pipeline(pipe, f"{source.requested} {source.location}")
        self._pipe = pipe
        self._source_key = key
        self._scheduler_config = pipe.scheduler.config
        self._schedulers = {}
        self._loaded = LoadedModel(
            model_id=source.location,
            requested=model,
            family=defaults.family,
            device=self.device,
            dtype=self.dtype,
            load_seconds=time.perf_counter() - started,
            notice=source.notice,
            native_size=defaults.size,
            pipeline_class=type(pipe).__name__,
            notes=notes,
            defaults=defaults,
        )
        plain = f"; plain mode: {', '.join(defaults.plain)}" if defaults.plain else ""
        status(f"ready: {source.location} on {self.device} ({self.dtype}){plain}")
        return self._loaded

    def _demo_ready(self) -> bool:
        from sdtui.config import cache_dir

        return (cache_dir() / "demo-model" / "model_index.json").exists()

    def _performance_options(self) -> PerformanceOptions:
        from sdtui.engine import performance

        return self.performance or performance.PerformanceOptions()

    def _apply_performance(self, pipe: DiffusionPipeline) -> list[str]:
        from sdtui.engine import performance

        options = self._performance_options()
        return list(performance.apply_performance(pipe, options, self.device) or [])

    # -- schedulers ----------------------------------------------------------

    def use_scheduler(self, name: str) -> SchedulerMixin:
        """Put the scheduler called `name` on the loaded pipeline (no reload); returns it."""
        if self._pipe is None:
            raise SdtuiError("no model is loaded")
        defaults = self._loaded.defaults if self._loaded is not None else None
        if defaults is not None and not defaults.schedulers:
            plain: SchedulerMixin = self._pipe.scheduler
            return plain  # a plain pipeline whose scheduler sdtui cannot name
        try:
            name = canonical_scheduler(name)
            problem = families.check_scheduler(defaults, name) if defaults else None
            if problem:
                raise KeyError(problem)
            spec = scheduler_spec(name, bool(defaults and defaults.flow_matching))
        except KeyError as exc:
            raise ValidationError("scheduler", str(exc.args[0])) from None
        scheduler = self._schedulers.get(name)
        if scheduler is None:
            import diffusers

            scheduler_class = getattr(diffusers, spec.class_name)
            scheduler = scheduler_class.from_config(self._scheduler_config, **spec.options)
            self._schedulers[name] = scheduler
        self._pipe.scheduler = scheduler
        return scheduler

    # -- generating ----------------------------------------------------------

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        on_image: ImageCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> GenerationResult:
        """Make `request.count` images one at a time; raises GenerationCancelled on cancel."""
        with self._lock:
            if cancel is not None and cancel.cancelled:
                raise GenerationCancelled()
            loaded = self._load(request.model, on_status, None)
            try:
                if is_workflow(request):  # img2img, inpaint, outpaint, hires fix
                    from sdtui.engine import workflows

                    return workflows.generate(
                        self, request, loaded, on_progress, cancel, on_image, on_status
                    )
                return self._generate(request, loaded, on_progress, cancel, on_image, on_status)
            except _Interrupted:
                raise GenerationCancelled() from None
            except SdtuiError:
                raise
            except Exception as exc:
                if loader.is_out_of_memory(exc):
                    loader.free_device_memory(self.device)
                    raise OutOfMemoryError(
                        f"{self.device} ran out of memory making a "
                        f"{request.width}x{request.height} image",
                        self._memory_hint(request),
                    ) from None
                # Anything else is still explained in one line; the cause stays chained.
                text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise SdtuiError(f"generation failed: {text}") from exc

    def _memory_hint(self, request: GenerationRequest) -> str:
        from sdtui.engine import performance

        try:
            return performance.next_memory_step(
                self._performance_options(), request.width, request.height, request.count
            )
        except Exception:  # the hint must never hide the real failure
            return "lower the size or the count, turn on VAE tiling, or use model CPU offload"

    def _generate(
        self,
        request: GenerationRequest,
        loaded: LoadedModel,
        on_progress: ProgressCallback | None,
        cancel: CancelToken | None,
        on_image: ImageCallback | None,
        on_status: StatusCallback | None = None,
    ) -> GenerationResult:
        import torch

        from sdtui.engine import adapters, performance

        pipe = self._pipe
        assert pipe is not None  # `_load` ran just before
        self.use_scheduler(request.scheduler)
        second = self._refiner_for(request, loaded, on_status)
        options = self._performance_options()
        # VAE tiling/slicing depend on this request's size and count.
        performance.apply_request_settings(
            pipe, options, request.width, request.height, request.count
        )
        if performance.compile_pending(pipe) and on_status is not None:
            on_status("compiling the UNet (first generation after torch.compile; can take minutes)")
        base_seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        seeds = request.image_seeds(base_seed)
        previewer = self._previewer(loaded.family)
        if previewer is not None:
            previewer.image_size = (request.width, request.height)  # FLUX's packed latents
        started = time.perf_counter()
        images: list[GeneratedImage] = []
        blacked_out: list[int] = []
        # The prompt's LoRAs and embeddings on the pipeline (their hashes recorded in the
        # request, as A1111 does); the encoder sees no <lora:> tags.
        request, prompt, negative = adapters.prepare_pipeline(
            pipe, request, self.addons, loaded.family, self.allow_pickle
        )
        # Every image of the batch has the same prompt: encode a weighted one once.
        prompt_kwargs = pipeline_call.prompt_kwargs(pipe, loaded.family, prompt, negative)
        not_taken: list[str] = []
        for index, seed in enumerate(seeds):
            if cancel is not None and cancel.cancelled:
                raise GenerationCancelled()
            generator = torch.Generator(device=devices.generator_device(self.device))
            generator.manual_seed(seed)
            callback = self._step_callback(request, index, started, on_progress, cancel, previewer)
            call, not_taken = pipeline_call.accepted_kwargs(
                pipe,
                dict(
                    **prompt_kwargs,
                    num_inference_steps=request.steps,
                    guidance_scale=request.cfg,
                    width=request.width,
                    height=request.height,
                    num_images_per_prompt=1,
                    generator=generator,
                    callback_on_step_end=callback,
                    callback_on_step_end_tensor_inputs=["latents"],
                    output_type="pil",
                ),
            )
            if second is not None:
                call.update(refiner.base_stage_kwargs(request))
            output = pipe(**call)  # type: ignore[operator]  # each pipeline class has __call__
            if second is not None:
                output = refiner.refine(second, request, output.images, generator, callback)
            performance.mark_compiled(pipe)
            flagged = getattr(output, "nsfw_content_detected", None)
            if flagged and flagged[0]:
                # The model's own safety checker replaced the picture with black.
                blacked_out.append(seed)
            generated = GeneratedImage(output.images[0], seed, index, request)
            images.append(generated)
            if on_image is not None:
                on_image(generated)
        return GenerationResult(
            request=request,
            images=images,
            model_id=loaded.model_id,
            device=self.device,
            dtype=self.dtype,
            load_seconds=loaded.load_seconds,
            generate_seconds=time.perf_counter() - started,
            info={
                "family": loaded.family,
                "base_seed": base_seed,
                "notice": loaded.notice,
                "notes": list(loaded.notes),
                "blacked_out_seeds": blacked_out,
                "not_used": not_taken,  # arguments a plain pipeline does not take
            },
        )

    def _refiner_for(
        self, request: GenerationRequest, loaded: LoadedModel, on_status: StatusCallback | None
    ) -> DiffusionPipeline | None:
        """The refiner pipeline when the request names one (loaded on first use)."""
        if not request.refiner:
            return None
        if loaded.family != "sdxl":
            raise ValidationError(
                "refiner", f"runs after SDXL models; {loaded.model_id} is {loaded.family}"
            )
        if on_status is not None:
            on_status(f"refiner: {request.refiner}")
        assert self._pipe is not None  # the base model is loaded first
        second = self._refiner.pipeline(
            request.refiner, self._pipe, devices.torch_dtype(self.dtype), self.device,
            self.allow_pickle,
        )  # fmt: skip
        self._refiner.use_scheduler(request.scheduler)
        return second

    def _previewer(self, family: str) -> Previewer | None:
        if self.preview in ("off", "none", "", None):
            return None
        from sdtui.engine.preview import make_previewer

        previewer = make_previewer(
            family, self.preview, max_fps=self._performance_options().preview_fps
        )
        return previewer if callable(previewer) else None

    def _step_callback(
        self,
        request: GenerationRequest,
        index: int,
        started: float,
        on_progress: ProgressCallback | None,
        cancel: CancelToken | None,
        previewer: Previewer | None,
    ) -> Callable[..., dict[str, Any]]:
        def on_step_end(
            pipe: DiffusionPipeline, step: int, _timestep: object, kwargs: dict[str, Any]
        ) -> dict[str, Any]:
            # Second-order schedulers (Heun, DPM2) run more model calls than steps.
            total = int(getattr(pipe, "_num_timesteps", 0) or request.steps)
            if on_progress is not None:
                preview = None
                if previewer is not None:
                    preview = previewer(kwargs.get("latents"), step + 1, total)
                on_progress(
                    StepProgress(
                        step=step + 1,
                        total=total,
                        elapsed=time.perf_counter() - started,
                        image_index=index,
                        image_count=request.count,
                        preview=preview,
                    )
                )
            if cancel is not None and cancel.cancelled:
                pipe._interrupt = True
                # Leaving through an exception skips the VAE decode that
                # `_interrupt` alone would still run after the loop.
                raise _Interrupted()
            return kwargs

        return on_step_end
