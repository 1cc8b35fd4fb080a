"""Measure sdtui's engine against plain diffusers on the same pipeline, and each fast path.

Every comparison runs its variants interleaved (A, B, A, B, ...) and reports
medians, so that a noisy neighbour or a warming GPU slows both sides alike.
The numbers are ratios first: absolute seconds depend on the machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdtui.bench.architectures import NATIVE_SIZE, architecture_folder
from sdtui.engine.performance import PerformanceOptions, _set_attention
from sdtui.params import GenerationRequest

if TYPE_CHECKING:
    from diffusers.models.modeling_utils import ModelMixin
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline
    from PIL.Image import Image

    from sdtui.results import StepProgress

FAST_PATHS = (
    "classic-attention",
    "channels-last",
    "vae-tiling",
    "vae-slicing",
    "offload-model",
    "offload-sequential",
    "compile",
)
CUDA_ONLY = ("offload-model", "offload-sequential")
# Compiling a full UNet takes many minutes on a CPU: only when asked for by name.
OPT_IN_ON_CPU = ("compile",)
# On a GPU the wall clock is what a person waits. On a CPU this process's CPU time
# is compared instead: other programs on a shared machine stretch the wall clock
# of one run and not another, but they do not add to our CPU time.
WALL_TIME = "wall time"
CPU_TIME = "process CPU time"
ENGINE_TARGET_PCT = 2.0
PREVIEW_TARGET_PCT = 5.0
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
# Few runs: the TUI timings are a side dish here; the script itself measures more.
TUI_SCRIPT_ARGS = ("--runs", "3", "--keys", "20")


@dataclass
class BenchConfig:
    arch: str | None = "demo"
    model: str | None = None
    steps: int = 20
    width: int | None = None
    height: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    modes: tuple[str, ...] | None = None  # None: every fast path that applies
    repeats: int = 3
    seed: int = 1234
    prompt: str = PROMPT
    tui: bool = True
    tui_script: Path | None = None


@dataclass
class _Samples:
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_bytes: list[int] = field(default_factory=list)

    def median(self, basis: str) -> float:
        return statistics.median(self.cpu_seconds if basis == CPU_TIME else self.seconds)

    def summary(self, steps: int, basis: str = WALL_TIME) -> dict[str, Any]:
        seconds = statistics.median(self.seconds)
        runs = self.cpu_seconds if basis == CPU_TIME else self.seconds
        middle = statistics.median(runs)
        spread = (max(runs) - min(runs)) / middle * 100 if middle > 0 else 0.0
        return {
            "seconds_per_image": round(seconds, 4),
            "cpu_seconds_per_image": round(statistics.median(self.cpu_seconds), 4),
            "it_per_s": round(steps / seconds, 3) if seconds > 0 else None,
            "spread_pct": round(spread, 1),  # (slowest - fastest) / median: the noise here
            "peak_memory_mb": round(max(self.peak_bytes) / 2**20, 1) if self.peak_bytes else None,
            "runs": [round(s, 4) for s in self.seconds],
        }


class _Memory:
    """Peak memory of one run: CUDA allocator peak on a GPU, the process's peak RSS elsewhere."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.kind = "torch.cuda.max_memory_allocated" if self.cuda else "process peak RSS"

    def reset(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            try:  # Linux: "5" resets the peak resident set size (VmHWM) to the current one.
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass

    def peak(self) -> int:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            return int(torch.cuda.max_memory_allocated())
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class Benchmark:
    def __init__(self, config: BenchConfig, on_status: Callable[[str], None] | None = None):
        self.config = config
        self.status = on_status or (lambda _text: None)
        self.engine: Any = None
        self.memory: _Memory | None = None
        self.paths: _FastPath | None = None

    # -- one run of each kind ------------------------------------------------

    def _sync(self) -> None:
        if self.engine.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def _timed(self, samples: _Samples, run: Callable[[], Any]) -> Any:
        assert self.memory is not None
        self.memory.reset()
        self._sync()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run()
        self._sync()
        samples.seconds.append(time.perf_counter() - started)
        samples.cpu_seconds.append(time.process_time() - cpu_started)
        samples.peak_bytes.append(self.memory.peak())
        return result

    def _plain(self) -> Image:
        """What a diffusers script does: call the pipeline with the text and a seeded generator."""
        import torch

        from sdtui.engine.device import generator_device

        request = self.request
        generator = torch.Generator(generator_device(self.engine.device)).manual_seed(
            self.config.seed
        )
        return self.engine.pipeline(
            prompt=request.prompt,
            num_inference_steps=request.steps,
            guidance_scale=request.cfg,
            width=request.width,
            height=request.height,
            generator=generator,
            output_type="pil",
        ).images[0]

    def _engine(self, previews: bool) -> tuple[Any, int]:
        frames = 0

        def on_progress(progress: StepProgress) -> None:
            nonlocal frames
            if progress.preview is not None:
                frames += 1

        self.engine.preview = "latent" if previews else "off"
        result = self.engine.generate(self.request, on_progress=on_progress)
        return result.images[0].image, frames

    # -- the whole benchmark -------------------------------------------------

    def run(self) -> dict[str, Any]:
        import torch

        from sdtui.config import cache_dir
        from sdtui.engine import Engine

        config = self.config
        model = config.model
        if model is None:
            self.status(f"preparing the {config.arch} architecture (random weights)")
            model = str(architecture_folder(config.arch or "demo", cache_dir()))
        self.engine = Engine(
            device=config.device, dtype=config.dtype, performance=PerformanceOptions()
        )
        self.memory = _Memory(self.engine.device)
        self.basis = CPU_TIME if self.engine.device == "cpu" else WALL_TIME
        self.status(f"loading {model}")
        loaded = self.engine.load(model)
        native = NATIVE_SIZE.get(config.arch or "", loaded.native_size[0])
        width = config.width or native
        height = config.height or native
        defaults = loaded.defaults
        self.request = GenerationRequest(
            prompt=config.prompt,
            model=model,
            steps=config.steps,
            width=width,
            height=height,
            seed=config.seed,
            # The model's own sampler and guidance (flow matching for SD 3 / FLUX).
            **({"scheduler": defaults.scheduler, "cfg": defaults.cfg} if defaults else {}),
        )
        report: dict[str, Any] = {
            "arch": config.arch if config.model is None else None,
            "model": loaded.model_id,
            "family": loaded.family,
            "device": self.engine.device,
            "dtype": self.engine.dtype,
            "torch": torch.__version__,
            "size": f"{width}x{height}",
            "steps": config.steps,
            "scheduler": self.request.scheduler,
            "repeats": config.repeats,
            "memory_measure": self.memory.kind,
            "compared_by": self.basis,
            "load_seconds": round(loaded.load_seconds, 3),
        }
        self.status("first and second image after loading")
        first, second = _Samples(), _Samples()
        self._timed(first, lambda: self._engine(previews=False))
        self._timed(second, lambda: self._engine(previews=False))
        report["first_image_seconds"] = round(first.seconds[0], 4)
        report["second_image_seconds"] = round(second.seconds[0], 4)
        report.update(self._engine_vs_plain())
        report["preview_cost"] = self._preview_cost(report["plain"]["seconds_per_image"])
        report["fast_paths"] = self._fast_paths()
        report["tui"] = (
            tui_latency(config.tui_script) if config.tui else {"note": "left out (--no-tui)"}
        )
        return report

    def _engine_vs_plain(self) -> dict[str, Any]:
        import numpy as np

        plain, engine, previews = _Samples(), _Samples(), _Samples()
        same_image = True
        frames: list[int] = []
        for repeat in range(self.config.repeats):
            self.status(f"plain diffusers vs engine, round {repeat + 1}/{self.config.repeats}")
            plain_image = self._timed(plain, self._plain)
            engine_image, _ = self._timed(engine, lambda: self._engine(previews=False))
            preview_image, shown = self._timed(previews, lambda: self._engine(previews=True))
            frames.append(shown)
            reference = np.asarray(plain_image, dtype=np.int16)
            for other in (engine_image, preview_image):
                same_image &= bool(np.abs(np.asarray(other, dtype=np.int16) - reference).max() <= 1)
        steps, basis = self.config.steps, self.basis
        result = {
            "plain": plain.summary(steps, basis),
            "engine": engine.summary(steps, basis),
            "engine_previews": previews.summary(steps, basis),
        }
        base = plain.median(basis)
        for key, samples, target in (
            ("engine", engine, ENGINE_TARGET_PCT),
            ("engine_previews", previews, PREVIEW_TARGET_PCT),
        ):
            pct = (samples.median(basis) / base - 1) * 100
            result[key]["overhead_pct"] = round(pct, 2)
            result[key]["overhead_ms"] = round((samples.median(basis) - base) * 1000, 2)
            result[key]["target_pct"] = target
            result[key]["within_target"] = pct <= target
        result["engine_previews"]["preview_frames"] = statistics.median(frames)
        result["engine"]["same_image_as_plain"] = same_image
        return result

    def _preview_cost(self, seconds_per_image: float) -> dict[str, Any]:
        """One latent->RGB frame on the device, against one denoising step."""
        import torch

        from sdtui.engine.preview import latents_to_rgb
        from sdtui.families import get_family

        pipe = self.engine.pipeline
        family = self.engine.loaded.family
        factor = getattr(pipe, "vae_scale_factor", 8)
        channels = get_family(family).latent_channels
        latents = torch.randn(
            1,
            channels,
            self.request.height // factor,
            self.request.width // factor,
            device=self.engine.device,
            dtype=_denoiser(pipe).dtype,
        )
        if get_family(family).packed_latents:  # as FLUX hands them to the step callback
            h, w = latents.shape[-2:]
            latents = latents.reshape(1, channels, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
            latents = latents.reshape(1, (h // 2) * (w // 2), channels * 4)
        latents_to_rgb(latents, family)  # first call pays for lazy imports
        times = []
        for _ in range(20):
            self._sync()
            started = time.perf_counter()
            latents_to_rgb(latents, family)
            times.append(time.perf_counter() - started)
        frame = statistics.median(times)
        step = seconds_per_image / self.config.steps
        return {"ms_per_frame": round(frame * 1000, 3), "pct_of_step": round(frame / step * 100, 3)}

    # -- fast paths ----------------------------------------------------------

    def _fast_paths(self) -> dict[str, Any]:
        device = self.engine.device
        on_cpu = not device.startswith("cuda")
        asked = self.config.modes
        results: dict[str, Any] = {}
        for mode in FAST_PATHS:
            if asked is not None and mode not in asked:
                continue
            if on_cpu and mode in CUDA_ONLY:
                results[mode] = {"status": f"n/a on {device}"}
                continue
            if on_cpu and mode in OPT_IN_ON_CPU and asked is None:
                results[mode] = {"status": f"skipped on {device} (pass --modes {mode})"}
                continue
            self.status(f"fast path: {mode}")
            try:
                results[mode] = self._measure_fast_path(mode)
            except Exception as exc:  # one failing path must not lose the others' numbers
                results[mode] = {"status": f"failed: {type(exc).__name__}: {exc}"[:300]}
                self._fast_path().revert(mode)
        return results

    def _fast_path(self) -> _FastPath:
        if self.paths is None:
            self.paths = _FastPath(self.engine.pipeline, self.engine.device)
        return self.paths

    def _measure_fast_path(self, mode: str) -> dict[str, Any]:
        path = self._fast_path()
        result: dict[str, Any] = {"status": "measured"}
        if mode == "compile":
            path.apply(mode)
            started = time.perf_counter()
            self._plain()  # the first call compiles
            result["compile_seconds"] = round(time.perf_counter() - started, 2)
            path.revert(mode)
        default, variant = _Samples(), _Samples()
        for _ in range(self.config.repeats):
            self._timed(default, self._plain)
            path.apply(mode)
            try:
                self._timed(variant, self._plain)
            finally:
                path.revert(mode)
        steps, basis = self.config.steps, self.basis
        base = default.summary(steps, basis)
        result.update(variant.summary(steps, basis))
        result["default_seconds_per_image"] = base["seconds_per_image"]
        result["default_peak_memory_mb"] = base["peak_memory_mb"]
        result["time_ratio"] = round(variant.median(basis) / default.median(basis), 3)
        note = path.note(mode, self.request)
        if note:
            result["note"] = note
        return result


def _denoiser(pipe: DiffusionPipeline) -> ModelMixin:
    """The UNet, or the transformer of SD 3 / FLUX."""
    unet = getattr(pipe, "unet", None)
    return unet if unet is not None else pipe.transformer


class _FastPath:
    """Turns one fast path on and back off on a loaded pipeline."""

    def __init__(self, pipe: DiffusionPipeline, device: str) -> None:
        self.pipe = pipe
        self.device = device
        self._compiled: Any = None

    def apply(self, mode: str) -> None:
        import torch

        pipe = self.pipe
        if mode == "classic-attention":
            for module in (_denoiser(pipe), pipe.vae):
                _set_attention(module, "classic")
        elif mode == "channels-last":
            for module in (_denoiser(pipe), pipe.vae):
                module.to(memory_format=torch.channels_last)  # type: ignore[call-arg]  # stubs miss it
        elif mode == "vae-tiling":
            pipe.vae.enable_tiling()
        elif mode == "vae-slicing":
            pipe.vae.enable_slicing()
        elif mode == "offload-model":
            pipe.enable_model_cpu_offload(device=self.device)
        elif mode == "offload-sequential":
            pipe.enable_sequential_cpu_offload(device=self.device)
        elif mode == "compile":
            # Keep the compiled function across rounds so it compiles once.
            if self._compiled is None:
                _denoiser(pipe).compile(mode="max-autotune-no-cudagraphs")
                self._compiled = _denoiser(pipe)._compiled_call_impl
            _denoiser(pipe)._compiled_call_impl = self._compiled
        else:
            raise ValueError(f"unknown fast path {mode!r}")

    def revert(self, mode: str) -> None:
        import torch

        pipe = self.pipe
        if mode == "classic-attention":
            for module in (_denoiser(pipe), pipe.vae):
                _set_attention(module, "sdpa")
        elif mode == "channels-last":
            for module in (_denoiser(pipe), pipe.vae):
                module.to(memory_format=torch.contiguous_format)  # type: ignore[call-arg]  # stubs miss it
        elif mode == "vae-tiling":
            pipe.vae.disable_tiling()
        elif mode == "vae-slicing":
            pipe.vae.disable_slicing()
        elif mode in ("offload-model", "offload-sequential"):
            pipe.remove_all_hooks()
            pipe.to(self.device)
        elif mode == "compile":
            _denoiser(pipe)._compiled_call_impl = None

    def note(self, mode: str, request: GenerationRequest) -> str:
        if mode == "vae-tiling":
            tile = getattr(self.pipe.vae, "tile_sample_min_size", None)
            if tile and max(request.width, request.height) <= tile:
                return f"no effect up to {tile}px: the VAE decodes images that small whole"
        if mode == "vae-slicing":
            return "slices batches; sdtui makes one image at a time, so it only saves memory there"
        if mode == "classic-attention":
            return "the pre-SDPA attention kernel; a ratio above 1 is what SDPA saves"
        return ""


def tui_latency(script: Path | None = None) -> dict[str, Any]:
    """Time to first paint and key latency from `benchmarks/tui_latency.py`, where it exists.

    The script prints one line per measurement ("label: median ..."); a JSON
    object line, if it prints one, is taken as is.
    """
    script = script or Path(__file__).resolve().parents[2] / "benchmarks" / "tui_latency.py"
    if not script.exists():
        return {"note": f"{script.name} not found; TUI timings left out"}
    try:
        done = subprocess.run(
            [sys.executable, str(script), *TUI_SCRIPT_ARGS],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return {"note": f"{script.name} took over 300 s; TUI timings left out"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"note": f"{script.name} failed ({done.returncode}): {last}"[:300]}
    timings: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except (json.JSONDecodeError, TypeError, ValueError):
                continue
        label, sep, value = line.partition(": ")
        if sep and "median" in value:
            timings[label.strip()] = value.strip()
    return timings or {"note": f"{script.name} printed no timings"}


def run_benchmark(
    config: BenchConfig, on_status: Callable[[str], None] | None = None
) -> dict[str, Any]:
    return Benchmark(config, on_status).run()
