"""`sdtui bench --suite gpu`: one table of plain diffusers against sdtui and every fast path.

For each case (SD 1.5 at 512² with 50 steps, SDXL at 1024² with 30 steps on a
GPU; the demo architecture on a CPU) the suite loads the same random-weight
folder twice: once as a plain diffusers script would (`from_pretrained`,
`.to(device)`, nothing else) and once through sdtui's engine with its default
settings. Every variant runs interleaved with the plain pipeline (plain,
variant, plain, variant, ...) so that a warming GPU or a noisy neighbour slows
both sides alike, and each row reports seconds per image, it/s, peak memory and
its ratio to plain diffusers in the same rounds.

A time budget keeps the whole run bounded: a variant that would start after
the budget is spent is listed as skipped, never silently left out.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdtui.bench.runner import CPU_TIME, WALL_TIME, _Memory, _Samples
from sdtui.params import GenerationRequest

if TYPE_CHECKING:
    import torch
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline
    from PIL.Image import Image

PROMPT = "a lighthouse on a cliff at dusk, oil painting"


@dataclass(frozen=True)
class SuiteCase:
    arch: str
    size: int
    steps: int


GPU_CASES = (SuiteCase("sd15", 512, 50), SuiteCase("sdxl", 1024, 30))
# What each architecture runs when it is named with --arch.
CASES = {
    "demo": SuiteCase("demo", 64, 8),
    "sd15": SuiteCase("sd15", 512, 50),
    "sd21": SuiteCase("sd21", 768, 30),
    "sdxl": SuiteCase("sdxl", 1024, 30),
}
# The fast paths, in the order they run. The quantized ones change the weights
# for good, so they run last, each on a copy of its own.
VARIANTS = (
    "classic-attention",
    "channels-last",
    "fused-qkv",
    "compile",
    "compile-cudagraphs",
    "int8",
    "fp8",
)
# Compiling a full UNet on a CPU takes many minutes, and the quantized kernels
# are written for GPUs: on a CPU these run only when asked for by name.
GPU_ONLY_BY_DEFAULT = ("compile", "compile-cudagraphs", "int8", "fp8")
DEFAULT_BUDGET_SECONDS = 420.0


@dataclass
class SuiteConfig:
    device: str = "cuda"
    dtype: str = "auto"
    cases: tuple[SuiteCase, ...] = GPU_CASES
    variants: tuple[str, ...] | None = None  # None: every variant that applies
    repeats: int = 3
    seed: int = 1234
    budget_seconds: float = DEFAULT_BUDGET_SECONDS


class _Case:
    """One architecture: a plain pipeline, sdtui's engine, and the rounds between them."""

    def __init__(self, suite: SuiteConfig, case: SuiteCase, status: Callable[[str], None]):
        self.suite = suite
        self.case = case
        self.status = status
        self.basis = WALL_TIME if suite.device.startswith("cuda") else CPU_TIME
        self.memory = _Memory(suite.device)
        self.plain: Any = None
        self.engine: Any = None
        self.request: GenerationRequest | None = None

    # -- set-up ----------------------------------------------------------------

    def prepare(self, folder: str) -> dict[str, Any]:
        from sdtui.engine import Engine
        from sdtui.engine.performance import PerformanceOptions

        case = self.case
        self.engine = Engine(
            device=self.suite.device, dtype=self.suite.dtype, performance=PerformanceOptions()
        )
        self.status(f"{case.arch}: loading through sdtui")
        loaded = self.engine.load(folder)
        self.request = GenerationRequest(
            prompt=PROMPT,
            model=folder,
            steps=case.steps,
            width=case.size,
            height=case.size,
            seed=self.suite.seed,
        )
        self.status(f"{case.arch}: loading as plain diffusers")
        self.plain = self._plain_pipeline(folder)
        # The same scheduler on both sides: the engine's is the one a request names.
        chosen = self.engine.use_scheduler(self.request.scheduler)
        self.plain.scheduler = type(chosen).from_config(chosen.config)
        return {
            "arch": case.arch,
            "family": loaded.family,
            "size": f"{case.size}x{case.size}",
            "steps": case.steps,
            "scheduler": self.request.scheduler,
            "dtype": self.engine.dtype,
            "compared_by": self.basis,
            "memory_measure": self.memory.kind,
        }

    def _plain_pipeline(self, folder: str) -> DiffusionPipeline:
        """What a diffusers script does: load, move to the device, call."""
        import diffusers

        from sdtui.engine.device import torch_dtype

        pipe = diffusers.DiffusionPipeline.from_pretrained(
            folder, torch_dtype=torch_dtype(self.engine.dtype)
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(self.suite.device)

    # -- one image of each kind -----------------------------------------------

    def _sync(self) -> None:
        if self.suite.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def _timed(self, samples: _Samples, run: Callable[[], Any]) -> Any:
        self.memory.reset()
        self._sync()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run()
        self._sync()
        samples.seconds.append(time.perf_counter() - started)
        samples.cpu_seconds.append(time.process_time() - cpu_started)
        samples.peak_bytes.append(self.memory.peak())
        return result

    def run_plain(self, pipe: DiffusionPipeline | None = None) -> Image:
        import torch

        from sdtui.engine.device import generator_device

        request = self.request
        assert request is not None
        generator = torch.Generator(generator_device(self.suite.device)).manual_seed(
            self.suite.seed
        )
        return (pipe or self.plain)(  # type: ignore[operator]  # subclasses' __call__
            prompt=request.prompt,
            num_inference_steps=request.steps,
            guidance_scale=request.cfg,
            width=request.width,
            height=request.height,
            generator=generator,
        ).images[0]

    def run_engine(self, previews: bool) -> Image:
        assert self.request is not None
        self.engine.preview = "latent" if previews else "off"
        return self.engine.generate(self.request).images[0].image

    # -- rows ------------------------------------------------------------------

    def row(self, name: str, variant: Variant) -> dict[str, Any]:
        """`variant` against plain diffusers, interleaved; the first call of each is not timed.

        The variant is switched on and off around its own calls only, outside the timing.
        """
        started = time.perf_counter()
        self.run_plain()
        variant.on()
        try:
            first_call = time.perf_counter()
            variant.call()  # warms caches, and compiles where the variant compiles
            first_call_seconds = time.perf_counter() - first_call
        finally:
            variant.off()
        plain, other = _Samples(), _Samples()
        for repeat in range(self.suite.repeats):
            self.status(f"{self.case.arch}: {name}, round {repeat + 1}/{self.suite.repeats}")
            plain_image = self._timed(plain, self.run_plain)
            variant.on()
            try:
                image = self._timed(other, variant.call)
            finally:
                variant.off()
        steps = self.case.steps
        result = {"name": name, "status": "measured", **other.summary(steps, self.basis)}
        result["plain_seconds_per_image"] = plain.summary(steps, self.basis)["seconds_per_image"]
        result["ratio_to_plain"] = round(other.median(self.basis) / plain.median(self.basis), 3)
        result["first_call_seconds"] = round(first_call_seconds, 3)
        # How far the fast path moves the picture from plain diffusers' (0-255 per channel).
        result["max_pixel_difference"] = _max_difference(plain_image, image)
        result["row_seconds"] = round(time.perf_counter() - started, 1)
        return result

    def close(self) -> None:
        self.plain = None
        if self.engine is not None:
            self.engine.unload()
        self.engine = None
        gc.collect()
        if self.suite.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def _max_difference(first: Image, second: Image) -> int:
    import numpy as np

    a, b = np.asarray(first, dtype=np.int16), np.asarray(second, dtype=np.int16)
    return int(np.abs(a - b).max()) if a.shape == b.shape else 255


def _skip_reason(variant: str, device: str, asked: tuple[str, ...] | None) -> str:
    on_cuda = device.startswith("cuda")
    if variant in GPU_ONLY_BY_DEFAULT and not on_cuda and asked is None:
        return f"skipped on {device} (name it with --modes {variant})"
    if variant in ("int8", "fp8"):
        try:
            import torchao  # noqa: F401
        except ImportError:
            return "skipped: torchao is not installed (pip install torchao)"
    if variant == "fp8":
        if not on_cuda:
            return f"n/a on {device}: fp8 kernels need a CUDA GPU"
        import torch

        if torch.cuda.get_device_capability(torch.device(device)) < (8, 9):
            return "n/a: fp8 needs a GPU of compute capability 8.9 or newer (Ada, Hopper)"
    return ""


def _nothing() -> None:
    pass


@dataclass
class Variant:
    """One way of making an image: `call` makes it, `on`/`off` wrap each call, `close` ends it."""

    call: Callable[[], Any]
    on: Callable[[], None] = _nothing
    off: Callable[[], None] = _nothing
    close: Callable[[], None] = _nothing


def make_variant(case: _Case, folder: str, name: str) -> Variant:
    """The fast path `name` on the case's plain pipeline, or on a copy of it."""
    import torch

    from sdtui.engine.performance import _set_attention

    pipe = case.plain
    if name == "classic-attention":

        def attention(kind: str) -> None:
            for module in (pipe.unet, pipe.vae):
                _set_attention(module, kind)

        return Variant(
            case.run_plain, on=lambda: attention("classic"), off=lambda: attention("sdpa")
        )
    if name == "channels-last":

        def memory_format(fmt: torch.memory_format) -> None:
            for module in (pipe.unet, pipe.vae):
                module.to(memory_format=fmt)

        return Variant(
            case.run_plain,
            on=lambda: memory_format(torch.channels_last),
            off=lambda: memory_format(torch.contiguous_format),
        )
    if name == "fused-qkv":
        return Variant(
            case.run_plain, on=pipe.fuse_qkv_projections, off=pipe.unfuse_qkv_projections
        )
    if name in ("compile", "compile-cudagraphs"):
        # A compiled UNet forward, swapped in around its own calls only.
        mode = "reduce-overhead" if name == "compile-cudagraphs" else None
        original = pipe.unet.forward
        compiled = torch.compile(original, mode=mode, fullgraph=False)

        def swap(forward: Callable[..., Any]) -> None:
            pipe.unet.forward = forward

        return Variant(
            case.run_plain,
            on=lambda: swap(compiled),
            off=lambda: swap(original),
            close=torch._dynamo.reset,
        )
    if name in ("int8", "fp8"):
        # Quantizing changes the weights for good: a copy of the pipeline of its own.
        from torchao import quantization

        copy = case._plain_pipeline(folder)
        copy.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
        if name == "int8":
            config = quantization.Int8WeightOnlyConfig()
        else:
            config = quantization.Float8DynamicActivationFloat8WeightConfig()
        quantization.quantize_(copy.unet, config)
        return Variant(lambda: case.run_plain(copy))
    raise ValueError(f"unknown variant {name!r}")


def run_suite(
    config: SuiteConfig, on_status: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Every case and variant of the suite as one JSON-ready report."""
    import torch

    from sdtui.bench.architectures import architecture_folder
    from sdtui.config import cache_dir

    status = on_status or (lambda _text: None)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "suite": "gpu",
        "device": config.device,
        "device_name": _device_name(config.device),
        "torch": torch.__version__,
        "repeats": config.repeats,
        "budget_seconds": config.budget_seconds,
        "cases": [],
    }
    for spec in config.cases:
        status(f"{spec.arch}: preparing the architecture (random weights)")
        folder = str(architecture_folder(spec.arch, cache_dir()))
        report["cases"].append(_run_case(config, spec, folder, status, started))
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    return report


def _run_case(
    config: SuiteConfig,
    spec: SuiteCase,
    folder: str,
    status: Callable[[str], None],
    started: float,
) -> dict[str, Any]:
    case = _Case(config, spec, status)
    try:
        entry = case.prepare(folder)
        rows = [
            case.row("sdtui default", Variant(lambda: case.run_engine(previews=False))),
            case.row("sdtui default + previews", Variant(lambda: case.run_engine(previews=True))),
        ]
        for name in VARIANTS:
            if config.variants is not None and name not in config.variants:
                continue
            reason = _skip_reason(name, config.device, config.variants)
            if not reason and time.perf_counter() - started > config.budget_seconds:
                reason = f"skipped: the {config.budget_seconds:g} s budget was spent"
            if reason:
                rows.append({"name": name, "status": reason})
            else:
                rows.append(_measure(case, folder, name))
        entry["rows"] = rows
        return entry
    finally:
        case.close()


def _measure(case: _Case, folder: str, name: str) -> dict[str, Any]:
    variant: Variant | None = None
    try:
        variant = make_variant(case, folder, name)
        return case.row(name, variant)
    except Exception as exc:  # one failing path must not lose the others' numbers
        return {"name": name, "status": f"failed: {type(exc).__name__}: {exc}"[:300]}
    finally:
        if variant is not None:
            variant.close()


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    import platform

    return platform.processor() or platform.machine()


def format_suite(report: dict[str, Any]) -> str:
    """The suite as a plain-text table, one block per case."""
    lines = [
        f"sdtui bench --suite gpu on {report['device']} ({report['device_name']}),"
        f" torch {report['torch']}, median of {report['repeats']} interleaved rounds,"
        f" {report['total_seconds']} s in all"
    ]
    for case in report["cases"]:
        lines.append("")
        lines.append(
            f"{case['arch']} ({case['family']}) {case['size']}, {case['steps']} steps,"
            f" {case['scheduler']}, {case['dtype']}; compared by {case['compared_by']}"
        )
        lines.append(
            f"  {'':26}{'s/image':>10}{'it/s':>9}{'vs plain':>10}{'plain s':>10}  peak memory"
        )
        for row in case["rows"]:
            if row["status"] != "measured":
                lines.append(f"  {row['name']:26}{row['status']}")
                continue
            peak = row["peak_memory_mb"]
            lines.append(
                f"  {row['name']:26}{row['seconds_per_image']:>10.3f}{row['it_per_s']:>9.2f}"
                f"{row['ratio_to_plain']:>10.3f}{row['plain_seconds_per_image']:>10.3f}"
                f"  {'-' if peak is None else f'{peak:,.0f} MB'}"
            )
    return "\n".join(lines)
