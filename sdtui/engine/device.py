"""Where the model runs and in which precision: CUDA fp16, MPS fp16, CPU fp32 by default."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from sdtui.config import DEVICES, DTYPES
from sdtui.errors import ValidationError

if TYPE_CHECKING:
    import torch

_TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _has_mps(torch: ModuleType) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def choose_device(requested: str = "auto") -> str:
    """The device to run on: `requested`, or the best one present for "auto"."""
    import torch

    if requested not in DEVICES:
        raise ValidationError("device", f"must be one of {', '.join(DEVICES)}, got {requested!r}")
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _has_mps(torch) else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        reason = "none is visible" if torch.version.cuda else "this PyTorch has no CUDA support"
        raise ValidationError(
            "device", f"cuda was asked for but {reason}; use --device cpu or check nvidia-smi"
        )
    if requested == "mps" and not _has_mps(torch):
        raise ValidationError("device", "mps was asked for but this machine has no Apple GPU")
    return requested


def choose_dtype(device: str, requested: str = "auto") -> str:
    """The weights precision: half precision on GPUs, full precision on the CPU."""
    if requested not in DTYPES:
        raise ValidationError("dtype", f"must be one of {', '.join(DTYPES)}, got {requested!r}")
    if requested != "auto":
        return requested
    return "fp32" if device == "cpu" else "fp16"


# Families whose text encoder (T5) and transformer overflow in fp16: bf16 where the GPU has it.
BF16_FAMILIES = ("sd3", "flux")


def dtype_for_family(device: str, family: str | None) -> str:
    """The automatic precision for a model of `family` on `device`."""
    if device == "cuda" and family in BF16_FAMILIES:
        import torch

        if torch.cuda.is_bf16_supported():
            return "bf16"
    return choose_dtype(device)


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype object for one of our precision names."""
    import torch

    dtype: torch.dtype = getattr(torch, _TORCH_DTYPES[name])
    return dtype


def generator_device(device: str) -> str:
    """Where the per-image random generator lives.

    MPS generators are not reproducible across runs, so MPS draws its noise on the CPU.
    """
    return "cpu" if device == "mps" else device
