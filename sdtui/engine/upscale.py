"""Super-resolution upscalers (ESRGAN and the other families spandrel knows), tiled.

Upscaler files (`.safetensors`, or `.pth` pickles once allowed) live in one
folder: `--upscaler-dir`, then `SDTUI_UPSCALERS`, then the `upscalers` config
setting, then `upscalers/` under sdtui's data folder. spandrel reads the
architecture from the weights themselves. Big pictures are cut into
overlapping tiles so a 4x upscale of a 1024x1024 image fits a small GPU.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from sdtui.errors import BadCheckpointError, SdtuiError, UnsafeCheckpointError, ValidationError

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
MAX_OUTPUT_PIXELS = 8192 * 8192  # beyond this the result alone fills several GB


def default_upscaler_dir() -> Path:
    return Path(platformdirs.user_data_dir("sdtui")) / "upscalers"


def upscaler_dir(flag: str | None = None, config: object = None) -> Path:
    """The upscaler folder: the flag, SDTUI_UPSCALERS, the `upscalers` setting, the default."""
    for value in (flag, os.environ.get("SDTUI_UPSCALERS"), config):
        if isinstance(value, (str, os.PathLike)) and str(value).strip():
            return Path(os.path.expanduser(str(value).strip()))
    return default_upscaler_dir()


@dataclass(frozen=True)
class UpscalerFile:
    name: str  # the file name without its suffix: what --upscaler takes
    path: Path
    size_bytes: int
    pickle: bool  # a .pth/.pt file: loading it needs --allow-pickle

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "format": "pickle" if self.pickle else "safetensors",
        }


def list_upscalers(folder: Path) -> list[UpscalerFile]:
    """The upscaler files in `folder` (not its subfolders), by name; [] when it is missing."""
    try:
        entries = sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise ValidationError(
            "upscaler folder", f"{folder}: cannot read it ({exc.strerror})"
        ) from None
    found = []
    for path in entries:
        suffix = path.suffix.lower()
        if path.is_file() and suffix in SAFE_SUFFIXES + PICKLE_SUFFIXES:
            found.append(
                UpscalerFile(path.stem, path, path.stat().st_size, suffix in PICKLE_SUFFIXES)
            )
    return found


def find_upscaler(name: str, folder: Path | None = None) -> Path:
    """The file for an upscaler name (its file name, with or without suffix) or a path."""
    folder = folder if folder is not None else upscaler_dir()
    candidate = Path(os.path.expanduser(name))
    if candidate.suffix.lower() in SAFE_SUFFIXES + PICKLE_SUFFIXES and candidate.is_file():
        return candidate
    files = list_upscalers(folder)
    for item in files:
        if name in (item.name, item.path.name) or name.lower() == item.name.lower():
            return item.path
    known = ", ".join(item.name for item in files) or "none"
    raise ValidationError(
        "upscaler", f"{name!r} is not in {folder} (there: {known}; see `sdtui upscalers`)"
    )


# -- loading -------------------------------------------------------------------------


@contextlib.contextmanager
def _without_torchvision() -> Iterator[None]:
    """Let spandrel import when torchvision is missing or broken.

    spandrel's registry imports torchvision for two architectures (LaMa,
    RestoreFormer) that sdtui does not use as upscalers. Placeholder modules
    stand in while spandrel is imported, then leave sys.modules again; calling
    into them raises ImportError.
    """
    if "spandrel" in sys.modules or _torchvision_works():
        yield
        return
    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")

    def missing(*_args: Any, **_kwargs: Any) -> Any:
        raise ImportError("this upscaler architecture needs torchvision, which is not installed")

    def attribute(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return missing

    for name in names:
        module = types.ModuleType(name)
        module.__getattr__ = attribute  # type: ignore[method-assign]
        module.__path__ = []  # a package, so the submodule imports resolve
        sys.modules[name] = module
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)


def _torchvision_works() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken build must not stop the upscalers
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            sys.modules.pop(name, None)
        return False
    return True


def _spandrel() -> Any:  # spandrel ships no type information
    try:
        with _without_torchvision():
            import spandrel
    except ImportError as exc:
        raise SdtuiError(
            f"upscalers need the spandrel package ({exc})",
            "pip install --no-deps 'spandrel>=0.4,<0.5' einops (torchvision is not needed)",
        ) from None
    return spandrel


def read_state_dict(path: Path, allow_pickle: bool = False) -> dict[str, Any]:
    """The tensors of an upscaler file; pickles only with the opt-in, and even then weights only."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise UnsafeCheckpointError(
            f"{path} is a pickle file, and loading one can run any code hidden in it",
            "use a .safetensors copy, or pass --allow-pickle if you trust where it came from",
        )
    if suffix not in SAFE_SUFFIXES + PICKLE_SUFFIXES:
        raise ValidationError("upscaler", f"{path}: not a .safetensors or .pth file")
    try:
        if suffix in SAFE_SUFFIXES:
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        import torch

        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValidationError("upscaler", f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not a model file"
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadCheckpointError(f"{path} is not a readable upscaler model ({text})") from None
    if not isinstance(data, dict):
        raise BadCheckpointError(f"{path} holds no weights (a {type(data).__name__})")
    return data


@dataclass
class Upscaler:
    """A loaded upscaler: spandrel's model and what it is."""

    name: str
    path: Path
    architecture: str
    scale: int
    model: Any  # spandrel.ImageModelDescriptor

    def to(self, device: str) -> Upscaler:
        self.model.to(device)
        return self


def load_upscaler(path: Path, allow_pickle: bool = False) -> Upscaler:
    """Load an upscaler file; BadCheckpointError when spandrel does not know what it is."""
    spandrel = _spandrel()
    state_dict = read_state_dict(path, allow_pickle)
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state_dict)
    except spandrel.UnsupportedModelError:
        raise BadCheckpointError(
            f"{path} is not an upscaler model spandrel knows",
            "ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, SPAN, ... in .safetensors or .pth",
        ) from None
    except Exception as exc:  # noqa: BLE001 - mismatched shapes in a damaged file
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadCheckpointError(f"{path}: the weights do not fit their model ({text})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise BadCheckpointError(f"{path} is not an image upscaler (it is {descriptor.purpose})")
    descriptor.eval()
    architecture = descriptor.architecture.name
    return Upscaler(path.stem, path, architecture, int(descriptor.scale), descriptor)


# -- running ------------------------------------------------------------------------


def output_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    width, height = round(size[0] * scale), round(size[1] * scale)
    if width * height > MAX_OUTPUT_PIXELS:
        raise ValidationError(
            "scale",
            f"{scale:g}x of {size[0]}x{size[1]} would be {width}x{height}; "
            f"the limit is {MAX_OUTPUT_PIXELS // 1_000_000} megapixels",
        )
    return width, height


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """Blend weights along one side of a tile: rising over the overlap, except at the border."""
    import torch

    weights = torch.ones(length)
    ramp = torch.linspace(0, 1, overlap + 2)[1:-1] if overlap > 0 else torch.ones(0)
    n = min(overlap, length)
    if not at_start and n:
        weights[:n] = ramp[:n]
    if not at_end and n:
        weights[length - n :] = torch.minimum(weights[length - n :], ramp[:n].flip(0))
    return weights


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, size) of the tiles along one side: as few as `tile` allows, evened out.

    Shrinking the tiles to share the length evenly keeps the overlap at `overlap`
    (a 1024 side in 512 tiles is 3 tiles of 363, not 3 of 512 piled on each other).
    """
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count)
    last = length - size
    return [(round(i * last / (count - 1)), size) for i in range(count)]


def run_tiled(
    model: Callable[[torch.Tensor], torch.Tensor],
    tensor: torch.Tensor,
    scale: int,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """`model` over a (1, C, H, W) tensor in overlapping tiles, blended where they meet.

    `tile` 0 runs the whole picture at once. Only one tile's activations are in
    memory at a time; the output is accumulated on the tensor's device.
    """
    import torch

    _, channels, height, width = tensor.shape
    if tile <= 0 or (height <= tile and width <= tile):
        return model(tensor)
    overlap = max(0, min(overlap, tile // 2))
    out = torch.zeros((1, channels, height * scale, width * scale), dtype=tensor.dtype,
                      device=tensor.device)  # fmt: skip
    total_weight = torch.zeros((1, 1, height * scale, width * scale), dtype=tensor.dtype,
                               device=tensor.device)  # fmt: skip
    rows, columns = _spans(height, tile, overlap), _spans(width, tile, overlap)
    count, done = len(rows) * len(columns), 0
    for y, h in rows:
        for x, w in columns:
            piece = model(tensor[:, :, y : y + h, x : x + w])
            wy = _ramp(h * scale, overlap * scale, y == 0, y + h >= height)
            wx = _ramp(w * scale, overlap * scale, x == 0, x + w >= width)
            weight = (wy[:, None] * wx[None, :]).to(tensor.device, tensor.dtype)[None, None]
            region = (slice(None), slice(None), slice(y * scale, (y + h) * scale),
                      slice(x * scale, (x + w) * scale))  # fmt: skip
            out[region] += piece * weight
            total_weight[region] += weight
            done += 1
            if on_tile is not None:
                on_tile(done, count)
    return out / total_weight.clamp_min(1e-8)


def upscale_image(
    upscaler: Upscaler,
    image: Image,
    device: str = "cpu",
    scale: float | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    on_tile: Callable[[int, int], None] | None = None,
) -> Image:
    """`image` upscaled by the model; resized to `scale`x the size when that differs from it."""
    import numpy as np
    import torch
    from PIL import Image as PILImage

    target = output_size(image.size, scale or upscaler.scale)
    # Check the size before the work: the model's own output is what fills memory.
    output_size(image.size, upscaler.scale)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    upscaler.to(device)
    dtype = next(upscaler.model.model.parameters()).dtype
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device, dtype)
    with torch.inference_mode():
        result = run_tiled(upscaler.model, tensor, upscaler.scale, tile, overlap, on_tile)
    array = (result[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy() * 255.0).round()
    upscaled = PILImage.fromarray(array.astype(np.uint8))
    if upscaled.size != target:
        upscaled = upscaled.resize(target, PILImage.Resampling.LANCZOS)
    return upscaled
