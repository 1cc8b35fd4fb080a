"""What a request uses from the LoRA and embedding folders: names resolved to files,
hashes recorded as A1111 writes them, and files found again (by name or hash) for a
remix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdtui.addons.files import (
    AddonError,
    AddonFile,
    AddonFolders,
    files_under,
    find_file,
    folder_stamp,
    scan_folder,
)
from sdtui.addons.hashes import (
    LORA_HASHES,
    TI_HASHES,
    HashCache,
    default_hash_cache,
    parse_hash_list,
    short_hash,
)
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.prompts.loras import LORA_TAG as LORA_TAG_PATTERN
from sdtui.prompts.loras import find_lora_tags


def embedding_pattern(name: str) -> re.Pattern[str]:
    """A word-bounded match of an embedding's name in any case (CLIP lowercases the
    prompt, so A1111 finds `EasyNegative` as `easynegative` too)."""
    return re.compile(rf"(?<![\w\-]){re.escape(name)}(?![\w\-])", re.IGNORECASE)


def embeddings_used(files: list[AddonFile], *texts: str) -> list[AddonFile]:
    """The embeddings whose names appear (as words) in any of `texts`."""
    joined = "\n".join(t for t in texts if t)
    return [f for f in files if embedding_pattern(f.name).search(joined)]


@dataclass(frozen=True)
class AddonUse:
    """The files a request uses, resolved from its folders."""

    loras: tuple[tuple[AddonFile, float], ...] = ()
    embeddings: tuple[AddonFile, ...] = ()


class AddonLibrary:
    """The two folders, scanned on demand and again when a folder changes."""

    def __init__(self, folders: AddonFolders, cache: HashCache | None = None) -> None:
        self.folders = folders
        self.cache = cache if cache is not None else default_hash_cache()
        self._scans: dict[str, tuple[float, list[AddonFile]]] = {}
        self._names: dict[str, tuple[float, frozenset[str]]] = {}

    def _folder(self, kind: str) -> Path | None:
        return self.folders.loras if kind == "lora" else self.folders.embeddings

    def files(self, kind: str) -> list[AddonFile]:
        folder = self._folder(kind)
        stamp = folder_stamp(folder)
        cached = self._scans.get(kind)
        if cached is None or cached[0] != stamp:
            cached = (stamp, scan_folder(folder, kind))
            self._scans[kind] = cached
        return cached[1]

    def names(self, kind: str) -> frozenset[str]:
        """The lower-case names a prompt may use (stems and paths under the folder), from
        the file names alone; listed again when the folder changes."""
        folder = self._folder(kind)
        stamp = folder_stamp(folder)
        cached = self._names.get(kind)
        if cached is None or cached[0] != stamp:
            names: set[str] = set()
            for path in files_under(folder):
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
        return short_hash(item.path, item.kind, self.cache)

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
