"""Turning a model string into a loaded diffusers pipeline, and load failures into sdtui errors.

A model string is a short name from `sdtui.models` (including the built-in
`demo`), a hub id (moved ids are rewritten, with a notice), a local diffusers
folder, or a single `.safetensors` checkpoint. Pickle checkpoints are refused
unless the caller opts in, because unpickling can run arbitrary code.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdtui.errors import (
    BadCheckpointError,
    GatedModelError,
    ModelNotFoundError,
    ModelOfflineError,
    OutOfMemoryError,
    SdtuiError,
    UnsafeCheckpointError,
)
from sdtui.models import DEMO_SOURCE, ModelEntry, resolve_model_name
from sdtui.params import SIZE_MULTIPLE, SIZE_RANGE

PICKLE_SUFFIXES = (".ckpt", ".pt", ".bin", ".pth")
SAFE_SUFFIXES = (".safetensors",)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# A key only SDXL checkpoints have: the second (OpenCLIP bigG) text encoder.
_SDXL_KEY_PREFIX = "conditioner.embedders.1."
# SD 2.x checkpoints carry an OpenCLIP text encoder instead of CLIP ViT-L.
_SD2_KEY_PREFIX = "cond_stage_model.model."


@dataclass(frozen=True)
class ModelSource:
    """Where a model string points. `kind` is "demo", "hub", "folder" or "file"."""

    requested: str
    kind: str
    location: str  # hub id, or an absolute path
    entry: ModelEntry | None = None
    notice: str = ""  # e.g. the hub id moved

    @property
    def key(self) -> str:
        """Identity of what gets loaded: `demo` and its folder's path load the same weights."""
        return self.location


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE asks for cached files only (checked at call time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_token() -> str | None:
    """The hub token from HF_TOKEN or `hf auth login`, if any."""
    try:
        from huggingface_hub import get_token
    except ImportError:  # pragma: no cover - very old huggingface_hub
        return os.environ.get("HF_TOKEN") or None
    return get_token()


def _looks_like_path(text: str) -> bool:
    """A hub id is `owner/name`; anything else with slashes or a file suffix is a path."""
    return (
        text.startswith(("/", ".", "~"))
        or text.lower().endswith(SAFE_SUFFIXES + PICKLE_SUFFIXES)
        or text.count("/") > 1
        or "\\" in text
    )


def resolve_source(model: str, cache_dir: Path | None = None) -> ModelSource:
    """Decide what `model` names; no weights are read.

    The demo model is built under `cache_dir` on first use (a few seconds).
    """
    resolved = resolve_model_name(model)
    text = resolved.source
    if text == DEMO_SOURCE:
        from sdtui.config import cache_dir as default_cache_dir
        from sdtui.engine.demo import demo_model_folder

        folder = demo_model_folder(cache_dir or default_cache_dir())
        return ModelSource(model, "demo", str(folder.resolve()), resolved.entry)
    path = Path(os.path.expanduser(text))
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{text} is a folder but not a diffusers model (it has no model_index.json)",
                "give the folder that holds model_index.json, or a .safetensors file",
            )
        return ModelSource(model, "folder", str(path.resolve()), resolved.entry)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in PICKLE_SUFFIXES:
            return ModelSource(model, "pickle", str(path.resolve()), resolved.entry)
        if suffix not in SAFE_SUFFIXES:
            raise ModelNotFoundError(
                f"{text} is not a model file (expected .safetensors)",
                "give a .safetensors checkpoint or a diffusers folder",
            )
        return ModelSource(model, "file", str(path.resolve()), resolved.entry)
    if _looks_like_path(text):
        raise ModelNotFoundError(f"no such file or folder: {text}")
    if not _HUB_ID.match(text):
        raise ModelNotFoundError(
            f"{text!r} is not a short model name, a hub id (owner/name) or a path",
            "run `sdtui models` to see the short names",
        )
    return ModelSource(model, "hub", text, resolved.entry, resolved.notice)


def family_from_state_dict_keys(keys: Any) -> str:
    """ "sdxl", "sd2" or "sd1" from the key names of an original (LDM-layout) checkpoint."""
    keys = list(keys)
    if any(k.startswith(_SDXL_KEY_PREFIX) for k in keys):
        return "sdxl"
    if any(k.startswith(_SD2_KEY_PREFIX) for k in keys):
        return "sd2"
    return "sd1"


def family_of_pipeline(pipe: Any) -> str:
    """ "sdxl", "sd2" or "sd1" for a loaded pipeline (anything else counts as sd1)."""
    if "XL" in type(pipe).__name__:
        return "sdxl"
    unet = getattr(pipe, "unet", None)
    cross = getattr(getattr(unet, "config", None), "cross_attention_dim", None)
    if cross == 1024:
        return "sd2"
    if cross == 2048:
        return "sdxl"
    return "sd1"


def native_size(pipe: Any) -> tuple[int, int]:
    """The size the model was trained at: the UNet's sample size times the VAE's scale."""
    unet = getattr(pipe, "unet", None)
    sample = getattr(getattr(unet, "config", None), "sample_size", None)
    scale = getattr(pipe, "vae_scale_factor", 8)
    if isinstance(sample, (list, tuple)):
        return usable_size(int(sample[1]) * scale), usable_size(int(sample[0]) * scale)
    if isinstance(sample, int):
        return usable_size(sample * scale), usable_size(sample * scale)
    return 512, 512


def usable_size(pixels: int) -> int:
    """A native size that a request accepts: tiny test models (32 px) come up to 64."""
    low, high = SIZE_RANGE
    pixels = min(max(int(pixels), low), high)
    return pixels - pixels % SIZE_MULTIPLE


def _read_checkpoint_keys(path: str) -> list[str]:
    """The tensor names in a checkpoint, without reading the tensors themselves.

    Only called for pickles once the user opted in; even then `weights_only`
    refuses anything but plain tensors.
    """
    if path.lower().endswith(SAFE_SUFFIXES):
        from safetensors import safe_open

        with safe_open(path, framework="pt") as handle:
            return list(handle.keys())
    import torch

    data = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    return [str(key) for key in data] if isinstance(data, dict) else []


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "<token>") if token else text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the RuntimeError MPS and the CPU raise when memory runs out."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def free_device_memory(device: str) -> None:
    """Give cached blocks back after a failure so the next try starts clean."""
    import gc

    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from: diffusers wraps hub errors in OSError."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


@contextlib.contextmanager
def explain_load_errors(source: ModelSource, token: str | None = None) -> Iterator[None]:
    """Turn what diffusers/huggingface_hub/safetensors raise into sdtui errors.

    The hub token is never part of a message.
    """
    try:
        yield
    except SdtuiError:
        raise
    except Exception as exc:
        raise _explain(exc, source, token) from None


def _explain(exc: Exception, source: ModelSource, token: str | None) -> SdtuiError:
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from safetensors import SafetensorError

    name = source.location
    for cause in _causes(exc):
        if isinstance(cause, GatedRepoError):
            return GatedModelError(
                f"{name} is gated: accept its licence on huggingface.co"
                + (" with the account of your token" if token else " and log in"),
                "run `hf auth login` or set HF_TOKEN",
            )
        if isinstance(cause, (RepositoryNotFoundError, RevisionNotFoundError)):
            return _not_on_hub(name)
        if isinstance(cause, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
            return _offline_error(source)
        if isinstance(cause, SafetensorError):
            return BadCheckpointError(
                f"{name} is damaged or not a safetensors file "
                f"({_scrub(_first_line(cause), token)})",
                "download it again",
            )
        if is_out_of_memory(cause):
            return OutOfMemoryError(
                f"not enough memory to load {name}",
                "close other programs using the GPU, or use --dtype fp16",
            )
        if _is_connection_error(cause):
            return _offline_error(source)
    message = _scrub(_first_line(exc), token)
    if _only_pickle_weights(message):
        return UnsafeCheckpointError(
            f"{name} has pickle weights (.bin) where .safetensors are expected, and loading "
            "a pickle can run any code hidden in it",
            "use a copy with .safetensors weights, or pass --allow-pickle if you trust it",
        )
    if source.kind == "hub":
        if "not a valid model identifier" in message:
            return _not_on_hub(name)
        if hub_offline() or _mentions_missing_cache(message):
            return _offline_error(source)
    if source.kind != "hub":
        return BadCheckpointError(
            f"cannot load {name}: {message}",
            "the files may be damaged or not a Stable Diffusion model",
        )
    return SdtuiError(f"cannot load {name}: {message}")


def _only_pickle_weights(message: str) -> bool:
    """diffusers' complaint when `use_safetensors=True` finds no .safetensors file."""
    text = message.lower()
    return ".safetensors" in text and ("no file named" in text or "could not find" in text)


def _not_on_hub(name: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"no model {name} on the Hugging Face Hub (or it is private)",
        "check the spelling, or run `sdtui models` for the short names",
    )


def _offline_error(source: ModelSource) -> ModelOfflineError:
    if source.kind == "file":
        return ModelOfflineError(
            f"{source.location} needs its model configuration from the hub, which is not reachable",
            "give --model-config with a local diffusers folder of the same architecture",
        )
    reason = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub cannot be reached"
    return ModelOfflineError(
        f"{source.location} is not in the local cache and {reason}",
        "download it once while online, or give a local folder or .safetensors file",
    )


def _is_connection_error(exc: BaseException) -> bool:
    kind = type(exc).__name__
    return isinstance(exc, (ConnectionError, TimeoutError)) or kind in (
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "NetworkError",
    )


def _mentions_missing_cache(message: str) -> bool:
    text = message.lower()
    return (
        "offline" in text
        or "local_files_only" in text
        or "cannot find the requested files in the" in text
        or "couldn't connect" in text
    )


def _dtype_kwargs(torch_dtype: Any) -> dict[str, Any]:
    """diffusers 0.40+ calls the argument `dtype`; earlier releases only know `torch_dtype`."""
    from diffusers.utils import deprecation_utils

    name = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
    return {name: torch_dtype}


def quiet_library_output() -> None:
    """No download/loading bars from diffusers and transformers: we report progress ourselves."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


HUB_LOOKUP_SECONDS = 5.0


def hub_resolves() -> bool:
    """Whether the hub's host name (from HF_ENDPOINT) resolves: one DNS lookup, at most
    a few seconds. Without it, the hub client retries for half a minute before failing."""
    import socket
    import threading
    from urllib.parse import urlsplit

    host = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    if not host:
        return True  # not ours to judge: let the client report it
    found: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
            found.append(True)
        except (OSError, UnicodeError):
            found.append(False)

    thread = threading.Thread(target=lookup, name="hub-lookup", daemon=True)
    thread.start()
    thread.join(HUB_LOOKUP_SECONDS)
    return bool(found and found[0])


def load_pipeline(
    source: ModelSource,
    torch_dtype: Any,
    allow_pickle: bool = False,
    config: str | None = None,
) -> Any:
    """Read the weights of `source` into a text-to-image pipeline (on the CPU).

    `config` is a local diffusers folder whose component configs describe a
    single-file checkpoint, so it can load without the hub.
    """
    if source.kind == "pickle" and not allow_pickle:
        raise UnsafeCheckpointError(
            f"{source.location} is a pickle checkpoint, and loading one can run any code "
            "hidden in it",
            "convert it to .safetensors, or pass --allow-pickle if you trust where it came from",
        )
    token = hub_token()
    quiet_library_output()
    with explain_load_errors(source, token):
        if source.kind in ("file", "pickle"):
            return _load_single_file(source, torch_dtype, config, token)
        from diffusers import AutoPipelineForText2Image

        kwargs: dict[str, Any] = _dtype_kwargs(torch_dtype)
        if not allow_pickle:
            # .bin weights are pickles, which can run code when read: .safetensors only.
            kwargs["use_safetensors"] = True
        if source.kind == "hub":
            kwargs["token"] = token
            if hub_offline() or not hub_resolves():
                kwargs["local_files_only"] = True  # cached files still load; others fail at once
        return AutoPipelineForText2Image.from_pretrained(source.location, **kwargs)


def _load_single_file(source: ModelSource, torch_dtype: Any, config: str | None, token: Any) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    family = family_from_state_dict_keys(_read_checkpoint_keys(source.location))
    pipeline_class = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    kwargs: dict[str, Any] = {**_dtype_kwargs(torch_dtype), "token": token}
    if config:
        config_path = Path(os.path.expanduser(config))
        if not (config_path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{config} is not a diffusers model folder (it has no model_index.json)",
                "give the folder of a model with the same architecture",
            )
        kwargs["config"] = str(config_path.resolve())
        kwargs["local_files_only"] = True
    elif hub_offline() or not hub_resolves():
        kwargs["local_files_only"] = True
    if family != "sdxl":
        # A single-file SD 1.x/2.x checkpoint has no safety checker weights.
        kwargs["safety_checker"] = None
        kwargs["requires_safety_checker"] = False
    return pipeline_class.from_single_file(source.location, **kwargs)
