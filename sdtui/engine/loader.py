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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import torch
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline

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


def family_from_state_dict_keys(keys: Iterable[str]) -> str:
    """ "flux", "sd3", "sdxl", "sd2" or "sd1" from the tensor names of a single-file checkpoint.

    Original (BFL / Stability / LDM) layouts and diffusers' own layout are both recognised.
    """
    keys = list(keys)
    bare = [k.removeprefix("model.diffusion_model.") for k in keys]
    if any(k.startswith(("double_blocks.", "single_transformer_blocks.")) for k in bare):
        return "flux"
    if any(k.startswith("joint_blocks.") for k in bare) or (
        "pos_embed.proj.weight" in bare and any(k.startswith("context_embedder.") for k in bare)
    ):
        return "sd3"
    if any(k.startswith(_SDXL_KEY_PREFIX) for k in keys):
        return "sdxl"
    if any(k.startswith(_SD2_KEY_PREFIX) for k in keys):
        return "sd2"
    return "sd1"


def guess_family(source: ModelSource) -> str | None:
    """The family of `source` before loading it, from what is cheap to read (None if unknown).

    Used to choose the precision: a short name's table entry, a folder's
    model_index.json, a checkpoint's tensor names, or a cached hub model_index.json.
    """
    from sdtui.families import family_from_class_name, read_model_index

    if source.entry is not None and source.entry.family != "demo":
        return source.entry.family
    index: dict[str, Any] = {}
    if source.kind in ("folder", "demo"):
        index = read_model_index(source.location)
    elif source.kind == "file":
        try:
            return family_from_state_dict_keys(_read_checkpoint_keys(source.location))
        except Exception:  # a damaged file is reported by the load itself
            return None
    elif source.kind == "hub":
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source.location, "model_index.json")
        except Exception:
            cached = None
        if isinstance(cached, str):
            index = read_model_index(Path(cached).parent)
    return family_from_class_name(str(index.get("_class_name", "")))


def holds_whole_pipeline(keys: Iterable[str]) -> bool:
    """Whether a transformer checkpoint also carries its VAE (else it is the transformer alone)."""
    return any(k.startswith(("first_stage_model.", "vae.")) for k in keys)


def family_of_pipeline(pipe: DiffusionPipeline) -> str:
    """The family of a loaded pipeline ("sd1" ... "flux", or its class name when plain)."""
    from sdtui.families import family_of_pipeline as detect

    return detect(pipe)


def native_size(pipe: DiffusionPipeline) -> tuple[int, int]:
    """The size the pipeline makes by default, inside sdtui's limits (64-2048)."""
    from sdtui.families import clamp_size, pipeline_default_size

    return clamp_size(pipeline_default_size(pipe))


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
    torch_dtype: torch.dtype,
    allow_pickle: bool = False,
    config: str | None = None,
) -> DiffusionPipeline:
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
        kwargs: dict[str, Any] = _dtype_kwargs(torch_dtype)
        if not allow_pickle:
            # .bin weights are pickles, which can run code when read: .safetensors only.
            kwargs["use_safetensors"] = True
        if source.kind == "hub":
            kwargs["token"] = token
            if hub_offline() or not hub_resolves():
                kwargs["local_files_only"] = True  # cached files still load; others fail at once
        pipeline_class = folder_pipeline_class(source.location) if source.kind != "hub" else None
        if pipeline_class is not None:
            pipe: DiffusionPipeline = pipeline_class.from_pretrained(source.location, **kwargs)
            return pipe
        return _auto_pipeline(source.location, kwargs)


def folder_pipeline_class(folder: str) -> type[DiffusionPipeline] | None:
    """The pipeline class a diffusers folder names in model_index.json, if diffusers has it."""
    import diffusers

    from sdtui.families import read_model_index

    name = str(read_model_index(folder).get("_class_name", ""))
    # The defining module's class: type checkers read the package root's as a placeholder.
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline

    found = getattr(diffusers, name, None) if name.isidentifier() else None
    if isinstance(found, type) and issubclass(found, DiffusionPipeline):
        return found
    return None


def _auto_pipeline(location: str, kwargs: dict[str, Any]) -> DiffusionPipeline:
    """The text-to-image pipeline for a hub id; one AutoPipeline does not know loads generically."""
    import diffusers

    pipe: DiffusionPipeline
    try:
        pipe = diffusers.AutoPipelineForText2Image.from_pretrained(location, **kwargs)
        return pipe
    except ValueError as exc:
        if "can't find a pipeline" not in str(exc).lower():
            raise
    pipe = diffusers.DiffusionPipeline.from_pretrained(location, **kwargs)
    return pipe


# The hub folders whose configs describe a transformer-only checkpoint (diffusers' own choice).
_CONFIG_REPOS = {
    ("flux", True): "black-forest-labs/FLUX.1-dev",
    ("flux", False): "black-forest-labs/FLUX.1-schnell",
    ("sd3", True): "stabilityai/stable-diffusion-3.5-large",
    ("sd3", False): "stabilityai/stable-diffusion-3.5-medium",
}
_PIPELINES = {
    "sd1": ("StableDiffusionPipeline", ""),
    "sd2": ("StableDiffusionPipeline", ""),
    "sdxl": ("StableDiffusionXLPipeline", ""),
    "sd3": ("StableDiffusion3Pipeline", "SD3Transformer2DModel"),
    "flux": ("FluxPipeline", "FluxTransformer2DModel"),
}


def _config_folder(config: str) -> str:
    config_path = Path(os.path.expanduser(config))
    if not (config_path / "model_index.json").is_file():
        raise ModelNotFoundError(
            f"{config} is not a diffusers model folder (it has no model_index.json)",
            "give the folder of a model with the same architecture",
        )
    return str(config_path.resolve())


def _load_single_file(
    source: ModelSource, torch_dtype: torch.dtype, config: str | None, token: str | None
) -> DiffusionPipeline:
    import diffusers

    keys = _read_checkpoint_keys(source.location)
    family = family_from_state_dict_keys(keys)
    pipeline_name, transformer_name = _PIPELINES[family]
    pipeline_class = getattr(diffusers, pipeline_name)
    kwargs: dict[str, Any] = {**_dtype_kwargs(torch_dtype), "token": token}
    if config:
        kwargs["config"] = _config_folder(config)
        kwargs["local_files_only"] = True
    elif hub_offline() or not hub_resolves():
        kwargs["local_files_only"] = True
    if transformer_name and not holds_whole_pipeline(keys):
        # FLUX and SD 3.5 files are mostly the transformer alone: the text encoders and
        # the VAE come from the config folder (or the hub repo of the same model).
        return _load_transformer_file(source, family, transformer_name, keys, kwargs)
    if family in ("sd1", "sd2"):
        # A single-file SD 1.x/2.x checkpoint has no safety checker weights.
        kwargs["safety_checker"] = None
        kwargs["requires_safety_checker"] = False
    pipe: DiffusionPipeline = pipeline_class.from_single_file(source.location, **kwargs)
    return pipe


def _load_transformer_file(
    source: ModelSource,
    family: str,
    transformer_name: str,
    keys: list[str],
    kwargs: dict[str, Any],
) -> DiffusionPipeline:
    import diffusers

    bare = {k.removeprefix("model.diffusion_model.") for k in keys}
    if family == "flux":
        large = "guidance_in.in_layer.weight" in bare or any(
            k.startswith("time_text_embed.guidance_embedder.") for k in bare
        )
    else:
        large = "joint_blocks.37.x_block.mlp.fc1.weight" in bare or any(
            k.startswith("transformer_blocks.37.") for k in bare
        )
    folder = kwargs.pop("config", None) or _CONFIG_REPOS[(family, large)]
    transformer_class = getattr(diffusers, transformer_name)
    transformer = transformer_class.from_single_file(
        source.location, config=folder, subfolder="transformer", **kwargs
    )
    pipeline_class = folder_pipeline_class(folder) if Path(folder).is_dir() else None
    pipeline_class = pipeline_class or getattr(diffusers, _PIPELINES[family][0])
    return pipeline_class.from_pretrained(folder, transformer=transformer, **kwargs)
