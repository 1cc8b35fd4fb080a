"""LoRA and embedding files described from their safetensors header alone: which model
family each is for, its trigger words, and the folder scan that names them.

Stdlib only (a safetensors header is 8 bytes of length and a JSON object), so the
picker, `sdtui loras` and the request checks never import torch. Files are
named by their stem, as in A1111; a stem found twice is named by its path
under the folder (`style/ink`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.errors import SdtuiError, ValidationError

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".ckpt", ".bin", ".pth")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # what the safetensors library itself accepts

FAMILY_NAMES = {
    "sd1": "SD 1.x",
    "sd2": "SD 2.x",
    "sdxl": "SDXL",
    "sd3": "SD 3",
    "flux": "FLUX",
    "demo": "the demo model",
}


def family_name(family: str) -> str:
    return FAMILY_NAMES.get(family, family or "an unknown model")


class AddonError(SdtuiError):
    """A LoRA or embedding that cannot be used: unknown, damaged, for another model family."""

    exit_code = 2


@dataclass(frozen=True)
class AddonFolders:
    """Where LoRAs and embeddings are looked for."""

    loras: Path | None = None
    embeddings: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> AddonFolders:
        return cls(getattr(settings, "loras", None), getattr(settings, "embeddings", None))


@dataclass(frozen=True)
class AddonFile:
    """One LoRA or embedding file, described from its header alone."""

    kind: str  # "lora" or "embedding"
    name: str
    path: Path
    size: int
    family: str = ""  # "" when it cannot be told
    triggers: tuple[str, ...] = ()  # trigger words / most frequent training tags
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    error: str = ""  # why the header could not be read

    @property
    def is_pickle(self) -> bool:
        return self.path.suffix.lower() in PICKLE_SUFFIXES

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind,
            "family": self.family or None,
            "size": self.size,
            "triggers": list(self.triggers),
        }
        if self.error:
            data["error"] = self.error
        base = self.metadata.get("ss_sd_model_name")
        if base:
            data["base_model"] = base
        return data


# -- safetensors headers -----------------------------------------------------


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file; AddonError when it is not one."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise AddonError(f"{path.name} is empty or truncated, not a safetensors file")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES or length > os.fstat(handle.fileno()).st_size - 8:
                raise AddonError(f"{path.name} is damaged: its header length makes no sense")
            raw = handle.read(length)
    except OSError as exc:
        raise AddonError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AddonError(f"{path.name} is damaged: its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise AddonError(f"{path.name} is damaged: its header is not a table")
    return header


def _shapes(header: Mapping[str, Any]) -> dict[str, list[int]]:
    return {
        key: list(value.get("shape") or [])
        for key, value in header.items()
        if key != "__metadata__" and isinstance(value, dict)
    }


def _metadata(header: Mapping[str, Any]) -> dict[str, str]:
    meta = header.get("__metadata__")
    if not isinstance(meta, dict):
        return {}
    return {str(k): str(v) for k, v in meta.items()}


_CROSS_ATTENTION_FAMILY = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
_TEXT_WIDTH_FAMILY = {768: "sd1", 1024: "sd2"}


def _family_from_metadata(meta: Mapping[str, str]) -> str:
    text = " ".join(
        meta.get(key, "") for key in ("modelspec.architecture", "ss_base_model_version")
    ).lower()
    if not text.strip():
        return ""
    for needle, family in (
        ("flux", "flux"),
        ("stable-diffusion-v3", "sd3"),
        ("sd3", "sd3"),
        ("xl", "sdxl"),
        ("v2", "sd2"),
        ("v1", "sd1"),
    ):
        if needle in text:
            return family
    return ""


def lora_family(header: Mapping[str, Any]) -> str:
    """The model family a LoRA is for, from its metadata, key names and shapes ("" unknown)."""
    shapes = _shapes(header)
    keys = list(shapes)
    if any(k.startswith(("lora_te2_", "text_encoder_2.", "te2.")) for k in keys):
        return "sdxl"
    if any("double_blocks" in k or "single_blocks" in k or "single_transformer" in k for k in keys):
        return "flux"
    if any("joint_blocks" in k or k.startswith("transformer.transformer_blocks") for k in keys):
        return "sd3"
    family = _family_from_metadata(_metadata(header))
    if family:
        return family
    if any(k.startswith("lora_unet_input_blocks") or "input_blocks_" in k for k in keys):
        return "sdxl"  # kohya names SDXL's UNet blocks after the original repository
    for key, shape in shapes.items():
        # The cross-attention key/value layers take the text encoder's width.
        flat = key.replace(".", "_")
        if ("attn2_to_k" in flat or "attn2_to_v" in flat) and len(shape) == 2:
            down = "lora_down" in flat or "lora_A" in flat
            width = shape[1] if down else 0
            if width in _CROSS_ATTENTION_FAMILY:
                return _CROSS_ATTENTION_FAMILY[width]
    return ""


def embedding_vectors(header: Mapping[str, Any]) -> dict[str, list[int]]:
    """encoder -> shape of the vectors an embedding holds ("clip_l"/"clip_g" or "text")."""
    shapes = _shapes(header)
    if "clip_l" in shapes or "clip_g" in shapes:
        return {k: shapes[k] for k in ("clip_l", "clip_g") if k in shapes}
    if "emb_params" in shapes:
        return {"text": shapes["emb_params"]}
    if len(shapes) == 1:  # diffusers: {"<token>": vectors}
        return {"text": next(iter(shapes.values()))}
    return {}


def embedding_family(header: Mapping[str, Any]) -> str:
    vectors = embedding_vectors(header)
    if "clip_g" in vectors:
        return "sdxl"
    shape = vectors.get("text")
    if shape:
        return _TEXT_WIDTH_FAMILY.get(shape[-1], "")
    return ""


def _triggers(meta: Mapping[str, str], limit: int = 12) -> tuple[str, ...]:
    """Trigger words a trainer wrote, else the most frequent training tags (kohya)."""
    words: list[str] = []
    for key in ("modelspec.trigger_phrase", "ss_trigger_words", "trigger_words"):
        if meta.get(key):
            words += [w.strip() for w in re.split(r"[,\n]", meta[key]) if w.strip()]
    if not words and meta.get("ss_tag_frequency"):
        counts: dict[str, int] = {}
        try:
            folders = json.loads(meta["ss_tag_frequency"])
            for tags in folders.values():
                for tag, count in tags.items():
                    tag = str(tag).strip()
                    if tag:
                        counts[tag] = counts.get(tag, 0) + int(count)
        except (ValueError, TypeError, AttributeError):
            counts = {}
        words = sorted(counts, key=lambda t: (-counts[t], t))
    return tuple(dict.fromkeys(words))[:limit]


def describe_file(path: Path, kind: str, name: str) -> AddonFile:
    """An AddonFile for `path`; a damaged header is recorded in `error`, not raised."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if path.suffix.lower() not in SAFE_SUFFIXES:
        return AddonFile(kind, name, path, size)
    try:
        header = read_safetensors_header(path)
    except AddonError as exc:
        return AddonFile(kind, name, path, size, error=exc.message)
    meta = _metadata(header)
    family = lora_family(header) if kind == "lora" else embedding_family(header)
    return AddonFile(kind, name, path, size, family, _triggers(meta), meta)


# -- folders -----------------------------------------------------------------


def files_under(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    suffixes = SAFE_SUFFIXES + PICKLE_SUFFIXES
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(suffixes) and not name.startswith("."):
                found.append(Path(root) / name)
    return found


def scan_folder(folder: Path | None, kind: str) -> list[AddonFile]:
    """Every LoRA or embedding under `folder` (subfolders too), sorted by name."""
    paths = files_under(folder)
    stems: dict[str, int] = {}
    for path in paths:
        stems[path.stem.lower()] = stems.get(path.stem.lower(), 0) + 1
    out = []
    for path in paths:
        name = path.stem
        if stems[path.stem.lower()] > 1 and folder is not None:
            name = path.relative_to(folder).with_suffix("").as_posix()
        out.append(describe_file(path, kind, name))
    return sorted(out, key=lambda f: f.name.lower())


def _closest(name: str, files: Iterable[AddonFile]) -> list[str]:
    names = [f.name for f in files]
    lowered = {n.lower(): n for n in names}
    return [lowered[n] for n in difflib.get_close_matches(name.lower(), list(lowered), n=3)]


def find_file(files: list[AddonFile], name: str, kind: str, folder: Path | None) -> AddonFile:
    """The file called `name` (stem or path under the folder, any case); AddonError with
    the closest names when there is none."""
    wanted = name.strip().replace("\\", "/").lower()
    for suffix in SAFE_SUFFIXES + PICKLE_SUFFIXES:
        if wanted.endswith(suffix):
            wanted = wanted[: -len(suffix)]
    for item in files:
        if item.name.lower() == wanted:
            return item
    by_stem = [f for f in files if f.path.stem.lower() == wanted.rsplit("/", 1)[-1]]
    if folder is not None:
        by_path = [
            f
            for f in by_stem
            if f.path.relative_to(folder).with_suffix("").as_posix().lower() == wanted
        ]
        if len(by_path) == 1:
            return by_path[0]
    if len(by_stem) > 1:
        choices = ", ".join(f.name for f in by_stem)
        raise ValidationError(kind, f"{name!r} is in several folders; write one of: {choices}")
    close = _closest(name, files)
    where = f" in {folder}" if folder is not None else ""
    hint = f"; closest: {', '.join(close)}" if close else ""
    if folder is None or not folder.is_dir():
        raise ValidationError(kind, f"no {kind} called {name!r}: the folder{where} does not exist")
    raise ValidationError(kind, f"no {kind} called {name!r}{where}{hint}")


def folder_stamp(folder: Path | None) -> float:
    """Changes when files are added or removed anywhere under `folder` (cheap: folders only)."""
    if folder is None or not folder.is_dir():
        return -1.0
    stamp = 0.0
    for root, dirs, _files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        try:
            stamp += os.stat(root).st_mtime_ns
        except OSError:
            continue
    return stamp
