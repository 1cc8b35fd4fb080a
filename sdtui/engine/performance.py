"""Speed and memory settings applied to a loaded pipeline: SDPA attention,
channels-last, VAE tiling/slicing, CPU offload, torch.compile, and the live preview.

Each setting has an "auto" value that picks what suits the device and the
image size; the config file's `[performance]` table, `SDTUI_*` variables and
flags override it. The engine calls `apply_performance` after every load and
`apply_request_settings` before every generation (tiling and slicing depend on
the size and count asked for).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sdtui.engine.preview import PREVIEW_MODES
from sdtui.engine.quantize import QUANTIZE_MODES
from sdtui.errors import ValidationError

if TYPE_CHECKING:
    import torch
    from diffusers.models.modeling_utils import ModelMixin
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline

    from sdtui.config import Settings

SWITCH = ("auto", "on", "off")
ATTENTION = ("auto", "sdpa", "classic")
OFFLOAD = ("auto", "none", "model", "sequential")
COMPILE_MODES = ("off", "max-autotune-no-cudagraphs", "reduce-overhead", "default")

# Above this many pixels the VAE decode of one image needs several GiB: decode in tiles.
TILING_PIXELS = 1024 * 1024

# Attribute set on a pipeline whose UNet is compiled but has not run yet.
_COMPILE_PENDING = "_sdtui_compile_pending"
# Attribute set on a pipeline whose UNet was handed to torch.compile.
_COMPILED = "_sdtui_compiled"

# Most earlier pipelines kept in CPU memory (`keep_models`).
MAX_KEEP_MODELS = 16


@dataclass(frozen=True)
class PerformanceOptions:
    """Each field "auto" picks a sensible default for the device and image size."""

    channels_last: str = "auto"  # auto | on | off
    vae_tiling: str = "auto"  # auto | on | off
    vae_slicing: str = "auto"  # auto | on | off
    offload: str = "auto"  # auto | none | model | sequential
    compile: bool = False
    compile_mode: str = "max-autotune-no-cudagraphs"
    attention: str = "auto"  # auto (= sdpa) | sdpa | classic
    preview: str = "latent"  # latent | taesd | off
    preview_fps: float = 4.0
    keep_models: int = 1  # earlier pipelines parked in CPU memory; 0: drop them
    quantize: str = "none"  # none | int8 | fp8: the denoiser's weights (torchao)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once
        for name, allowed in (
            ("channels_last", SWITCH),
            ("vae_tiling", SWITCH),
            ("vae_slicing", SWITCH),
            ("offload", OFFLOAD),
            ("attention", ATTENTION),
            ("preview", PREVIEW_MODES),
            ("quantize", QUANTIZE_MODES),
        ):
            set_(self, name, _choice(name, getattr(self, name), allowed))
        set_(self, "compile", _bool("compile", self.compile))
        mode = _choice("compile_mode", self.compile_mode, COMPILE_MODES[1:])
        set_(self, "compile_mode", mode)
        try:
            fps = float(self.preview_fps)
        except (TypeError, ValueError):
            raise ValidationError(
                "preview_fps", f"must be a number, got {self.preview_fps!r}"
            ) from None
        if not 0 <= fps <= 60:
            raise ValidationError("preview_fps", f"must be between 0 and 60, got {fps:g}")
        set_(self, "preview_fps", fps)
        set_(self, "keep_models", _keep_models(self.keep_models))


def _keep_models(value: object) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdecimal()):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
        raise ValidationError(
            "keep_models", f"must be a whole number from 0 to {MAX_KEEP_MODELS}, got {shown}"
        )
    count = int(text) if len(text) <= 6 else MAX_KEEP_MODELS + 1  # int() refuses 4301 digits
    if count > MAX_KEEP_MODELS:
        text = text if len(text) <= 20 else f"a {len(text)}-digit number"
        # Each parked SDXL pipeline holds about 7 GB of CPU memory.
        raise ValidationError(
            "keep_models", f"must be a whole number from 0 to {MAX_KEEP_MODELS}, got {text}"
        )
    return count


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if isinstance(value, bool):  # TOML `vae_tiling = true`
        value = "on" if value else "off"
    text = str(value).strip().lower()
    if text not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    return text


def _bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValidationError(name, f"must be true or false, got {value!r}")


# ---------------------------------------------------------------- applying


def _device_type(device: torch.device | str) -> str:
    return str(device).split(":", 1)[0]


def _vae(pipe: DiffusionPipeline) -> ModelMixin | None:
    return getattr(pipe, "vae", None)


def _set_attention(module: ModelMixin | None, attention: str) -> bool:
    """Put every standard attention layer of `module` on SDPA (or the classic kernel)."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    if module is None:
        return False
    processors = getattr(module, "attn_processors", None)
    if not processors:
        return False
    # LoRA/IP-Adapter processors carry weights of their own: leave such models alone.
    if not all(type(p) in (AttnProcessor, AttnProcessor2_0) for p in processors.values()):
        return False
    module.set_attn_processor(AttnProcessor() if attention == "classic" else AttnProcessor2_0())
    return True


def _wants_channels_last(options: PerformanceOptions, device: str) -> bool:
    # Measured: a clear win for cuDNN convolutions, a loss on CPU at small sizes.
    if options.channels_last == "auto":
        return _device_type(device) == "cuda"
    return options.channels_last == "on"


def _model_bytes(pipe: DiffusionPipeline) -> int:
    total = 0
    for component in getattr(pipe, "components", {}).values():
        parameters = getattr(component, "parameters", None)
        if callable(parameters):
            total += sum(p.numel() * p.element_size() for p in parameters())
    return total


def choose_offload(options: PerformanceOptions, pipe: DiffusionPipeline, device: str) -> str:
    """The offload mode to use: "auto" picks model offload when the weights crowd the GPU."""
    if options.offload != "auto":
        return options.offload
    if _device_type(device) != "cuda":
        return "none"
    import torch

    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    # Weights plus about 2.5 GiB of activations for a 1024px SDXL step in fp16.
    return "model" if _model_bytes(pipe) + int(2.5 * 2**30) > total else "none"


def apply_performance(
    pipe: DiffusionPipeline, options: PerformanceOptions, device: str
) -> list[str]:
    """Apply `options` to `pipe` in place; return short notes of what was turned on."""
    notes: list[str] = []
    unet = getattr(pipe, "unet", None)
    vae = _vae(pipe)

    attention = "classic" if options.attention == "classic" else "sdpa"
    changed = [m for m in (unet, vae) if m is not None and _set_attention(m, attention)]
    if changed and attention == "classic":
        notes.append("attention: classic kernel (slower, for comparison)")

    if _wants_channels_last(options, device):
        import torch

        for module in (unet, vae):
            if module is not None:
                # ModelMixin.to takes what torch.nn.Module.to does; its stubs miss memory_format.
                module.to(memory_format=torch.channels_last)  # type: ignore[call-arg]
        notes.append("channels-last memory format")

    if options.quantize != "none":
        from sdtui.engine.quantize import quantize_pipeline

        notes.append(quantize_pipeline(pipe, options.quantize, device))

    offload = choose_offload(options, pipe, device)
    if offload != "none":
        if _device_type(device) != "cuda":
            flag = "--offload none"
            raise ValidationError(
                "offload",
                f"{offload} CPU offload needs a CUDA GPU, and this runs on {device}; use {flag}",
            )
        if offload == "model":
            pipe.enable_model_cpu_offload(device=device)
            notes.append("model CPU offload (each part moves to the GPU while it runs)")
        else:
            pipe.enable_sequential_cpu_offload(device=device)
            notes.append("sequential CPU offload (least memory, much slower)")

    if options.compile and unet is not None:
        # nn.Module.compile keeps the UNet's type, config and attention processors.
        unet.compile(mode=options.compile_mode, fullgraph=False)
        setattr(pipe, _COMPILE_PENDING, True)
        setattr(pipe, _COMPILED, True)
        notes.append(f"torch.compile ({options.compile_mode}): the first generation compiles")
    return notes


def tiling_wanted(options: PerformanceOptions, width: int, height: int) -> bool:
    if options.vae_tiling == "auto":
        return width * height > TILING_PIXELS
    return options.vae_tiling == "on"


def slicing_wanted(options: PerformanceOptions, count: int) -> bool:
    if options.vae_slicing == "auto":
        return count > 1
    return options.vae_slicing == "on"


def apply_request_settings(
    pipe: DiffusionPipeline, options: PerformanceOptions, width: int, height: int, count: int = 1
) -> list[str]:
    """Turn VAE tiling/slicing on or off for one request; return notes of what is on."""
    vae = _vae(pipe)
    if vae is None or not hasattr(vae, "enable_tiling"):
        return []
    notes = []
    if tiling_wanted(options, width, height):
        vae.enable_tiling()
        notes.append("VAE tiling")
    else:
        vae.disable_tiling()
    if slicing_wanted(options, count):
        vae.enable_slicing()
        notes.append("VAE slicing")
    else:
        vae.disable_slicing()
    return notes


def compile_pending(pipe: DiffusionPipeline) -> bool:
    """True until the first generation after `torch.compile` has run (it compiles)."""
    return bool(getattr(pipe, _COMPILE_PENDING, False))


def can_park(pipe: DiffusionPipeline) -> bool:
    """Whether `pipe` may be moved to CPU memory and back to the device later.

    Not with CPU offload: accelerate's hooks own where each part lives (the
    weights already wait on the CPU) and `pipe.to(...)` fights them. Not with
    torch.compile: the compiled UNet is specialised to its device and, with
    `reduce-overhead`, holds CUDA graphs and static buffers on the GPU, so moving
    it back would recompile (minutes) rather than save time.
    """
    if getattr(pipe, "_offload_device", None) is not None:
        return False
    return not getattr(pipe, _COMPILED, False)


def mark_compiled(pipe: DiffusionPipeline) -> None:
    if compile_pending(pipe):
        setattr(pipe, _COMPILE_PENDING, False)


def next_memory_step(options: PerformanceOptions, width: int, height: int, count: int) -> str:
    """What to turn on (or lower) after running out of memory with `options`."""
    if not tiling_wanted(options, width, height):
        return "turn on VAE tiling (--vae-tiling on)"
    if options.offload in ("none", "auto"):
        return "turn on model CPU offload (--offload model)"
    if options.quantize == "none":
        return "quantize the UNet/transformer to 8 bits (--quantize int8; needs torchao)"
    if options.offload == "model":
        return "turn on sequential CPU offload (--offload sequential; much slower)"
    smaller_w, smaller_h = _smaller_size(width, height)
    more = " or make fewer images at once" if count > 1 else ""
    return f"lower the size, e.g. --size {smaller_w}x{smaller_h}{more}"


def _smaller_size(width: int, height: int) -> tuple[int, int]:
    """About half the pixels, kept to multiples of 64."""
    scale = 0.7071
    return (max(64, int(width * scale) // 64 * 64), max(64, int(height * scale) // 64 * 64))


# ---------------------------------------------------------------- settings and flags

# option field -> (flag, choices or None, help)
_FLAGS: dict[str, tuple[str, tuple[str, ...] | None, str]] = {
    "attention": ("--attention", ATTENTION, "attention kernel (auto: PyTorch SDPA)"),
    "channels_last": ("--channels-last", SWITCH, "channels-last UNet/VAE (auto: on for CUDA)"),
    "vae_tiling": ("--vae-tiling", SWITCH, "decode in tiles (auto: above 1024x1024)"),
    "vae_slicing": ("--vae-slicing", SWITCH, "decode one image at a time (auto: count > 1)"),
    "offload": ("--offload", OFFLOAD, "move model parts to the GPU only while they run"),
    "preview": ("--preview", PREVIEW_MODES, "live step preview (taesd: when downloaded)"),
    "quantize": (
        "--quantize",
        QUANTIZE_MODES,
        "8-bit UNet/transformer weights (torchao; fp8 needs an Ada/Hopper GPU)",
    ),
}


def add_performance_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for every speed/memory setting; unset flags fall back to config and defaults."""
    group = parser.add_argument_group("speed and memory")
    for name, (flag, choices, help_text) in _FLAGS.items():
        group.add_argument(flag, dest=name, choices=choices, default=None, help=help_text)
    group.add_argument(
        "--compile",
        dest="compile",
        nargs="?",
        const="max-autotune-no-cudagraphs",
        choices=COMPILE_MODES,
        default=None,
        help="torch.compile the UNet (first generation is slow while it compiles)",
    )
    group.add_argument(
        "--preview-fps",
        dest="preview_fps",
        type=float,
        default=None,
        metavar="N",
        help="most preview frames a second (default 4)",
    )
    group.add_argument(
        "--keep-models",
        dest="keep_models",
        default=None,
        metavar="N",
        help="earlier models kept in CPU memory for a fast switch back (default 1; 0: none)",
    )


def _compile_value(value: Any) -> dict[str, Any]:
    """`compile` in config/env/flag: true/false or a torch.compile mode name."""
    if isinstance(value, str) and value.strip().lower() in COMPILE_MODES:
        mode = value.strip().lower()
        if mode == "off":
            return {"compile": False}
        return {"compile": True, "compile_mode": mode}
    return {"compile": _bool("compile", value)}


def performance_from_mapping(values: Mapping[str, Any]) -> PerformanceOptions:
    """Options from a `[performance]` table (unknown keys are an error, to catch typos)."""
    known = {f.name for f in fields(PerformanceOptions)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ValidationError(
                f"performance {key}", f"unknown setting; known: {', '.join(sorted(known))}"
            )
        if name == "compile":
            kwargs.update(_compile_value(value))
        else:
            kwargs[name] = value
    return PerformanceOptions(**kwargs)


def performance_from_settings(
    settings: Settings | None,
    args: argparse.Namespace | None = None,
    env: Mapping[str, str] | None = None,
) -> PerformanceOptions:
    """Defaults < config `[performance]` < `SDTUI_<SETTING>` variables < flags."""
    env = os.environ if env is None else env
    values: dict[str, Any] = dict(settings.section("performance")) if settings else {}
    for f in fields(PerformanceOptions):
        env_value = env.get(f"SDTUI_{f.name.upper()}")
        if env_value:
            values[f.name] = env_value
    for f in fields(PerformanceOptions):
        flag_value = getattr(args, f.name, None) if args is not None else None
        if flag_value is not None:
            values[f.name] = flag_value
    return performance_from_mapping(values)
