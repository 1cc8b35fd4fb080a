"""Quantized denoiser weights (torchao), so FLUX and SD 3.5 Large fit a 24 GB card.

`int8` stores the transformer's (or UNet's) linear weights in 8 bits and
computes in the model's dtype: about half the memory of bf16, on any device.
`fp8` keeps weights in float8, which needs a GPU with fp8 support (compute
capability 8.9: Ada, Hopper and later). torchao is an optional extra:
`pip install 'sdtui[quantize]'`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdtui.errors import SdtuiError, ValidationError

if TYPE_CHECKING:
    from diffusers.models.modeling_utils import ModelMixin
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline

QUANTIZE_MODES = ("none", "int8", "fp8")
FP8_CAPABILITY = (8, 9)


def denoiser(pipe: DiffusionPipeline) -> ModelMixin | None:
    """The part that runs every step: SD 3 / FLUX's transformer, or the UNet."""
    for name in ("transformer", "unet"):
        module: ModelMixin | None = getattr(pipe, name, None)
        if module is not None:
            return module
    return None


def _check_fp8(device: str) -> None:
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise ValidationError("quantize", f"fp8 needs a CUDA GPU; this runs on {device} (use int8)")
    if torch.cuda.get_device_capability() < FP8_CAPABILITY:
        raise ValidationError("quantize", "fp8 needs an Ada or Hopper GPU or later (use int8)")


def quantize_pipeline(pipe: DiffusionPipeline, mode: str, device: str) -> str:
    """Quantize the denoiser of `pipe` in place; returns a note ("" for `none`)."""
    if mode == "none":
        return ""
    if mode not in QUANTIZE_MODES:
        raise ValidationError("quantize", f"must be one of {', '.join(QUANTIZE_MODES)}")
    if mode == "fp8":
        _check_fp8(device)
    try:
        from torchao.quantization import (
            Float8WeightOnlyConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError:
        raise SdtuiError(
            f"--quantize {mode} needs torchao, which is not installed",
            "pip install 'sdtui[quantize]'",
        ) from None
    module = denoiser(pipe)
    if module is None:
        raise ValidationError("quantize", f"{type(pipe).__name__} has no UNet or transformer")
    quantize_(module, Int8WeightOnlyConfig() if mode == "int8" else Float8WeightOnlyConfig())
    return f"{type(module).__name__} weights quantized to {mode} (torchao)"
