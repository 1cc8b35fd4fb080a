"""The LoRA and embedding folders: what is in them, which model family each file is for,
and the short hashes AUTOMATIC1111 writes into `Lora hashes` and `TI hashes`.

Stdlib only (a safetensors header is 8 bytes of length and a JSON object), so the
picker, `sdtui loras` and the request checks never import torch. Files are
named by their stem, as in A1111; a stem found twice is named by its path
under the folder (`style/ink`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.errors import SdtuiError, ValidationError
from sdtui.params import GenerationRequest
from sdtui.prompts.loras import LORA_TAG as LORA_TAG_PATTERN
from sdtui.prompts.loras import find_lora_tags

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".ckpt", ".bin", ".pth")
LORA_HASHES = "Lora hashes"
TI_HASHES = "TI hashes"
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


def _files_under(folder: Path | None) -> list[Path]:
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
    paths = _files_under(folder)
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


# -- A1111's short hashes ----------------------------------------------------


def _sha256(path: Path, skip_header: bool) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if skip_header:
            (length,) = struct.unpack("<Q", handle.read(8))
            handle.seek(8 + length)
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """Full hashes remembered by path, size and modification time (a JSON file),
    so a folder of large files is read once, as A1111's cache does."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            self._data = {}
            if self.path is not None:
                try:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    if isinstance(data, dict):
                        self._data = data
                except (OSError, ValueError):
                    pass  # a missing or broken cache only costs time
        return self._data

    def sha256(self, path: Path, kind: str) -> str:
        """A1111's hash: for a safetensors LoRA the data after the header (so editing the
        metadata keeps it), for everything else the whole file."""
        skip = kind == "lora" and path.suffix.lower() in SAFE_SUFFIXES
        stat = path.stat()
        key = f"{kind}:{path.resolve()}"
        data = self._load()
        known = data.get(key)
        if known and known.get("size") == stat.st_size and known.get("mtime") == stat.st_mtime_ns:
            return str(known["sha256"])
        value = _sha256(path, skip)
        data[key] = {"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": value}
        self._save()
        return value

    def _save(self) -> None:
        if self.path is None or self._data is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self._data), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            pass


def default_hash_cache() -> HashCache:
    from sdtui.config import cache_dir

    return HashCache(cache_dir() / "addon-hashes.json")


def short_hash(path: Path, kind: str, cache: HashCache | None = None) -> str:
    """The 12 hex digits A1111 writes after a LoRA's or embedding's name."""
    return (cache or default_hash_cache()).sha256(path, kind)[:12]


# -- what a prompt uses ------------------------------------------------------


def embedding_pattern(name: str) -> re.Pattern[str]:
    """A word-bounded match of an embedding's name in any case (CLIP lowercases the
    prompt, so A1111 finds `EasyNegative` as `easynegative` too)."""
    return re.compile(rf"(?<![\w\-]){re.escape(name)}(?![\w\-])", re.IGNORECASE)


def embeddings_used(files: list[AddonFile], *texts: str) -> list[AddonFile]:
    """The embeddings whose names appear (as words) in any of `texts`."""
    joined = "\n".join(t for t in texts if t)
    return [f for f in files if f.path.stem and embedding_pattern(f.name).search(joined)]


@dataclass(frozen=True)
class AddonUse:
    """The files a request uses, resolved from its folders."""

    loras: tuple[tuple[AddonFile, float], ...] = ()
    embeddings: tuple[AddonFile, ...] = ()


class AddonLibrary:
    """The two folders, scanned on demand and again when a folder changes."""

    def __init__(self, folders: AddonFolders, cache: HashCache | None = None) -> None:
        self.folders = folders
        self.cache = cache
        self._scans: dict[str, tuple[float, list[AddonFile]]] = {}
        self._names: dict[str, tuple[float, frozenset[str]]] = {}

    def _folder(self, kind: str) -> Path | None:
        return self.folders.loras if kind == "lora" else self.folders.embeddings

    def files(self, kind: str) -> list[AddonFile]:
        folder = self._folder(kind)
        stamp = _folder_stamp(folder)
        cached = self._scans.get(kind)
        if cached is None or cached[0] != stamp:
            cached = (stamp, scan_folder(folder, kind))
            self._scans[kind] = cached
        return cached[1]

    def names(self, kind: str) -> frozenset[str]:
        """The lower-case names a prompt may use (stems and paths under the folder), from
        the file names alone; listed again when the folder changes."""
        folder = self._folder(kind)
        stamp = _folder_stamp(folder)
        cached = self._names.get(kind)
        if cached is None or cached[0] != stamp:
            names: set[str] = set()
            for path in _files_under(folder):
                names.add(path.stem.lower())
                if folder is not None:
                    names.add(path.relative_to(folder).with_suffix("").as_posix().lower())
            cached = (stamp, frozenset(names))
            self._names[kind] = cached
        return cached[1]

    def resolve(self, request: GenerationRequest) -> AddonUse:
        """The LoRAs and embeddings of `request`; ValidationError for unknown names or tags."""
        tags = find_lora_tags(request.prompt, "prompt")
        if find_lora_tags(request.negative_prompt, "negative prompt"):
            raise ValidationError(
                "negative prompt", "<lora:...> tags work in the prompt only; move them there"
            )
        loras: list[tuple[AddonFile, float]] = []
        if tags:
            files = self.files("lora")
            for tag in tags:
                loras.append((find_file(files, tag.name, "lora", self.folders.loras), tag.weight))
        embeddings = embeddings_used(
            self.files("embedding"), request.prompt, request.negative_prompt
        )
        return AddonUse(tuple(loras), tuple(embeddings))

    def hash(self, item: AddonFile) -> str:
        return short_hash(item.path, item.kind, self.cache or default_hash_cache())

    def record(self, request: GenerationRequest, use: AddonUse | None = None) -> GenerationRequest:
        """`request` with `Lora hashes` and `TI hashes` in its extras, as A1111 writes them
        (`use`: what `resolve` found for it); ValidationError when a name is unknown."""
        use = use or self.resolve(request)
        extras = {k: v for k, v in request.extras if k not in (LORA_HASHES, TI_HASHES)}
        try:
            if use.loras:
                extras[LORA_HASHES] = ", ".join(
                    f"{_listed(tag_name(request.prompt, item))}: {self.hash(item)}"
                    for item, _ in use.loras
                )
            if use.embeddings:
                extras[TI_HASHES] = ", ".join(
                    f"{_listed(e.name)}: {self.hash(e)}" for e in use.embeddings
                )
        except OSError as exc:
            raise AddonError(f"cannot read {exc.filename}: {exc.strerror}") from None
        if dict(request.extras) == extras:
            return request
        return request.replace(extras=tuple(extras.items()))

    def find_by_hash(self, kind: str, wanted: str) -> AddonFile | None:
        wanted = wanted.strip().lower()
        if not wanted:
            return None
        for item in self.files(kind):
            try:
                if self.hash(item).lower().startswith(wanted[:12]):
                    return item
            except OSError:
                continue
        return None


def _listed(name: str) -> str:
    """A name as A1111 writes it in a hash list: without the list's own separators."""
    return name.replace(":", "").replace(",", "")


def tag_name(prompt: str, item: AddonFile) -> str:
    """The name the prompt's tag used for `item` (what A1111 writes in `Lora hashes`)."""
    for tag in find_lora_tags(prompt):
        if tag.name.lower() in (item.name.lower(), item.path.stem.lower()):
            return tag.name
    return item.name


def _folder_stamp(folder: Path | None) -> float:
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


def parse_hash_list(text: str) -> dict[str, str]:
    """`name: hash, name: hash` (the value of `Lora hashes` / `TI hashes`) as a dict."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        name, sep, value = part.rpartition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def describe_loras(prompt: str, extras: Mapping[str, str]) -> list[dict[str, Any]]:
    """The LoRAs an image's prompt names, with the weight and the hash its metadata
    recorded (any tool's A1111-style text); malformed tags are left out."""
    hashes = parse_hash_list(extras.get(LORA_HASHES, ""))
    out = []
    for match in LORA_TAG_PATTERN.finditer(prompt or ""):
        name, _, weight = match.group(1).partition(":")
        try:
            value = float(weight.split(":")[0]) if weight else 1.0
        except ValueError:
            continue
        out.append({"name": name.strip(), "weight": value, "hash": hashes.get(name.strip(), "")})
    return out


def restore_addons(
    request: GenerationRequest, library: AddonLibrary
) -> tuple[GenerationRequest, list[str]]:
    """Before a remix: LoRAs and embeddings the image names, found here by name or else by
    the hash its metadata recorded (the prompt then names the local file). Returns the
    request and the names found neither way."""
    extras = dict(request.extras)
    prompt, negative = request.prompt, request.negative_prompt
    missing: list[str] = []
    lora_hashes = parse_hash_list(extras.get(LORA_HASHES, ""))
    try:
        tags = find_lora_tags(prompt)
    except ValidationError:
        tags = []
    files = library.files("lora")
    for tag in reversed(tags):  # from the end, so earlier positions stay valid
        try:
            find_file(files, tag.name, "lora", library.folders.loras)
            continue
        except ValidationError:
            pass
        found = library.find_by_hash("lora", lora_hashes.get(tag.name, ""))
        if found is None:
            missing.append(f"LoRA {tag.name}")
            continue
        prompt = prompt[: tag.start] + f"<lora:{found.name}:{tag.weight:g}>" + prompt[tag.end :]
    known = {f.name for f in library.files("embedding")}
    for name, wanted in parse_hash_list(extras.get(TI_HASHES, "")).items():
        if name in known:
            continue
        found = library.find_by_hash("embedding", wanted)
        if found is None:
            missing.append(f"embedding {name}")
            continue
        pattern = embedding_pattern(name)
        prompt, negative = pattern.sub(found.name, prompt), pattern.sub(found.name, negative)
    if (prompt, negative) != (request.prompt, request.negative_prompt):
        request = request.replace(prompt=prompt, negative_prompt=negative)
    return request, sorted(missing)
